"""The lab's class list as HematoVision ships it: the model's four classes and the others a
morphologist gives cells, with how each counts, its key on the review screen, its LOINC codes and
reference interval. Written by the data migration (review 0006) and again after a flush (tests),
whenever the list is empty; an admin changes it afterwards on the class list page.

Plain data and one function over the model classes it is given, so the migration can use it with
its historical models.
"""

from typing import Any

# (code, name, counting, shortcut, always reported, LOINC /100 leukocytes, LOINC absolute, reference %).
# LOINC: the method-less terms of the Manual Differential panel (24318-8); docs/workstation.md says
# where each comes from and which are uncertain.
DEFAULT_CLASSES: list[tuple[Any, ...]] = [
    (
        "NEUTROPHIL",
        "Neutrophil",
        "wbc",
        "4",
        True,
        ("26511-6", "Neutrophils/100 leukocytes in Blood"),
        ("26499-4", "Neutrophils [#/volume] in Blood"),
        (40.0, 75.0),
    ),
    (
        "BAND",
        "Band neutrophil",
        "wbc",
        "6",
        False,
        ("26508-2", "Band form neutrophils/100 leukocytes in Blood"),
        ("26507-4", "Band form neutrophils [#/volume] in Blood"),
        None,
    ),
    (
        "LYMPHOCYTE",
        "Lymphocyte",
        "wbc",
        "2",
        True,
        ("26478-8", "Lymphocytes/100 leukocytes in Blood"),
        ("26474-7", "Lymphocytes [#/volume] in Blood"),
        (20.0, 45.0),
    ),
    (
        "ATYPICAL_LYMPH",
        "Atypical (reactive) lymphocyte",
        "wbc",
        "7",
        False,
        ("13046-8", "Variant lymphocytes/100 leukocytes in Blood"),
        ("26477-0", "Variant lymphocytes [#/volume] in Blood"),
        None,
    ),
    (
        "MONOCYTE",
        "Monocyte",
        "wbc",
        "3",
        True,
        ("26485-3", "Monocytes/100 leukocytes in Blood"),
        ("26484-6", "Monocytes [#/volume] in Blood"),
        (2.0, 10.0),
    ),
    (
        "EOSINOPHIL",
        "Eosinophil",
        "wbc",
        "1",
        True,
        ("26450-7", "Eosinophils/100 leukocytes in Blood"),
        ("26449-9", "Eosinophils [#/volume] in Blood"),
        (1.0, 6.0),
    ),
    (
        "BASOPHIL",
        "Basophil",
        "wbc",
        "5",
        False,
        ("30180-4", "Basophils/100 leukocytes in Blood"),
        ("26444-0", "Basophils [#/volume] in Blood"),
        None,
    ),
    (
        "METAMYELOCYTE",
        "Metamyelocyte",
        "wbc",
        "t",
        False,
        ("28541-1", "Metamyelocytes/100 leukocytes in Blood"),
        ("30433-7", "Metamyelocytes [#/volume] in Blood"),
        None,
    ),
    (
        "MYELOCYTE",
        "Myelocyte",
        "wbc",
        "y",
        False,
        ("26498-6", "Myelocytes/100 leukocytes in Blood"),
        ("30446-9", "Myelocytes [#/volume] in Blood"),
        None,
    ),
    (
        "PROMYELOCYTE",
        "Promyelocyte",
        "wbc",
        "o",
        False,
        ("26524-9", "Promyelocytes/100 leukocytes in Blood"),
        ("26523-1", "Promyelocytes [#/volume] in Blood"),
        None,
    ),
    (
        "BLAST",
        "Blast",
        "wbc",
        "8",
        False,
        ("26446-5", "Blasts/100 leukocytes in Blood"),
        ("30376-8", "Blasts [#/volume] in Blood"),
        None,
    ),
    (
        "PLASMA_CELL",
        "Plasma cell",
        "wbc",
        "p",
        False,
        ("13047-6", "Plasma cells/100 leukocytes in Blood"),
        ("30458-4", "Plasma cells [#/volume] in Blood"),
        None,
    ),
    (
        "UNIDENTIFIED",
        "Unidentified",
        "wbc",
        "i",
        False,
        ("26471-3", "Leukocytes other/100 leukocytes in Blood"),
        ("30406-3", "Leukocytes other [#/volume] in Blood"),
        None,
    ),
    (
        "NRBC",
        "Nucleated red cell",
        "per_100_wbc",
        "9",
        False,
        ("19048-8", "Nucleated erythrocytes/100 leukocytes [Ratio] in Blood"),
        ("", ""),
        None,
    ),
    (
        "SMUDGE",
        "Smudge cell",
        "per_100_wbc",
        "0",
        False,
        ("34992-8", "Smudge cells/100 leukocytes in Blood"),
        ("34993-6", "Smudge cells [#/volume] in Blood"),
        None,
    ),
    ("ARTEFACT", "Artefact", "none", "a", False, ("", ""), ("", ""), None),
]


DEFAULT_TARGET = 100


def defaults_ensure(class_model: Any, settings_model: Any, using: str = "default") -> None:
    """Create the default classes when there are none, and the counting settings row when absent."""
    if not class_model.objects.using(using).exists():
        for position, (code, name, counting, key, always, loinc, absolute, reference) in enumerate(
            DEFAULT_CLASSES, start=1
        ):
            class_model.objects.using(using).create(
                code=code,
                name=name,
                counting=counting,
                position=position * 10,
                shortcut=key,
                always_reported=always,
                loinc_code=loinc[0],
                loinc_display=loinc[1],
                absolute_loinc_code=absolute[0],
                absolute_loinc_display=absolute[1],
                reference_low=reference[0] if reference else None,
                reference_high=reference[1] if reference else None,
            )
    settings_model.objects.using(using).get_or_create(pk=1, defaults={"default_target": DEFAULT_TARGET})


def defaults_ensure_after_migrate(
    sender: Any, apps: Any = None, using: str = "default", **kwargs: Any
) -> None:
    """post_migrate receiver: a flushed database (the tests' transactional ones) gets the defaults
    back, as the roles do. Nothing to do where the migration state has no class list yet."""
    if apps is None:
        from django.apps import apps
    try:
        class_model = apps.get_model("review", "DifferentialClass")
        settings_model = apps.get_model("review", "CountingSettings")
    except LookupError:
        return
    defaults_ensure(class_model, settings_model, using=using)
