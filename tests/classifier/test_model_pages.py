"""The Models pages (list and one version): figures in words from the registered card and
evaluation, "not measured" for what a card lacks, confusion matrices as tables, lineage, who
activated a version when, and the figure view that serves only the registered images."""

import hashlib
import json
import os
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from classifier.adapter import validated_domains
from classifier.model_pages import confusion_table, set_figures
from classifier.models import ModelVersion
from classifier.services import model_version_activate, model_version_register
from ml.card import read_card, write_card
from ml.domain import DomainThresholds
from ml.testing import make_tiny_model_dir
from tests.factories import image_bytes, model_version_make

CLASSES = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]
# Rows: true class; 180 of 200 right, as the card's accuracy says.
CONFUSION = [[50, 0, 0, 0], [0, 45, 5, 0], [0, 10, 40, 0], [0, 0, 5, 45]]
METRICS = {
    "validation": {
        "val_kaggle": 0.95,
        "calibrated": {"n": 400, "accuracy": 0.96, "review_fraction_at_threshold": 0.125},
    },
    "site_test": {
        "n": 200,
        "accuracy": 0.9,
        "macro_f1": 0.875,
        "auto_accept": {
            "slide_size": 25,
            "slides": 8,
            "slides_out_of_domain": 1,
            "cells": 200,
            "accepted": 150,
            "accepted_wrong": 3,
        },
        "cell_level": {"n_cells": 20, "accuracy": 0.95},
    },
    "pbc_test": {"n": 40, "accuracy": 0.975, "macro_f1": 0.97},  # no auto-acceptance measured
}
CURVES_PNG = image_bytes("PNG", (40, 30), (10, 120, 200))
CONFUSION_PNG = image_bytes("PNG", (30, 30), (200, 40, 40))


@pytest.fixture(scope="module")
def card_model_source(tmp_path_factory) -> Path:
    """A tiny real model whose card and evaluation hold known numbers, and its figures."""
    directory = make_tiny_model_dir(
        tmp_path_factory.mktemp("card-model") / "tiny-card",
        version="tiny-card",
        review_threshold=0.8,
        domain=DomainThresholds(cell=2.5, slide=1.5),
    )
    (directory / "training_curves.png").write_bytes(CURVES_PNG)
    (directory / "confusion_site_test.png").write_bytes(CONFUSION_PNG)
    (directory / "notes.txt").write_text("not a figure\n")
    evaluation = {"results": {"site_test": {"labels": CLASSES, "confusion_matrix": CONFUSION}}}
    (directory / "evaluation.json").write_text(json.dumps(evaluation))
    card = read_card(directory)
    card["domain"] = {**card["domain"], "fit_cells": {"kaggle": 77, "pbc": 88}}
    card |= {
        "created": "2026-12-01T10:00:00+00:00",
        "metrics": METRICS,
        "review_threshold_rule": "lowest confidence at which 99% of validation predictions are right",
        "data": {
            "train_sources": "kaggle+pbc",
            "train_images": 999,
            "validation_images": {"val_kaggle": 123},
        },
        "parent_version": "tiny-parent",
        "lineage": ["tiny-root", "tiny-parent"],
        "derivation": "adapted from tiny-parent for this test",
        "training": {"history": [{"epoch": 1, "loss": 0.5, "score": 0.8}, {"epoch": 2, "loss": 0.4}]},
    }
    write_card(directory, card)
    return directory


@pytest.fixture
def card_model_dir(models_root, card_model_source) -> Path:
    import shutil

    return Path(shutil.copytree(card_model_source, models_root / "tiny-card"))


@pytest.fixture
def parent(db) -> ModelVersion:
    return model_version_make("tiny-parent", is_active=True)


@pytest.fixture
def card_model(card_model_dir, parent, administrator) -> ModelVersion:
    """Registered by the command (no actor), then activated by the admin, replacing the parent."""
    model_version = model_version_register(directory=card_model_dir)
    return model_version_activate(actor=administrator, model_version=model_version)


def _detail(client, model_version: ModelVersion) -> str:
    response = client.get(reverse("classifier:model_version_detail", args=[model_version.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _set(page, key: str):
    return next(item for item in page.sets if item.key == key)


def _image(client, model_version: ModelVersion, name: str):
    return client.get(reverse("classifier:model_version_image", args=[model_version.pk, name]))


# --- The list -------------------------------------------------------------------------------------------


def test_the_list_summarises_each_version_in_one_row(pathologist_client, card_model, parent, administrator):
    response = pathologist_client.get(reverse("classifier:model_version_list"))
    page = response.content.decode()

    row = response.context["rows"][0]
    assert row.model_version == card_model  # the active one first
    assert [item.short_title for item in row.sets] == ["PBC test", "site test"]  # known sets first
    figures = row.sets[1].figures
    assert (figures.accuracy_short, figures.macro_f1) == ("90.0 %", "0.875")
    assert (figures.auto_acceptable_short, figures.wrong_short) == ("75.0 %", "2.00 %")
    assert row.sets[0].figures.auto_acceptable_short == "not measured"
    detail_url = reverse("classifier:model_version_detail", args=[card_model.pk])
    assert f'href="{detail_url}"' in page
    parent_url = reverse("classifier:model_version_detail", args=[parent.pk])
    assert f'from <a class="text-nowrap" href="{parent_url}">tiny-parent</a>' in page
    assert "Kaggle blood-cells (BCCD smears, one lab) · 123 validation images" in page
    assert "PBC (CellaVision DM96, Hospital Clinic of Barcelona) · validation images not recorded" in page
    assert f"by {administrator.username}" in page  # active since
    assert row.last_activation.actor == administrator


def test_the_list_page_reads_as_many_queries_for_seven_versions_as_for_two(pathologist_client, card_model):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert pathologist_client.get(reverse("classifier:model_version_list")).status_code == 200
        return len(context.captured_queries)

    two = queries()
    for index in range(5):
        model_version_make(f"extra-{index}")
    assert queries() == two


def test_only_an_admin_sees_the_activate_button(lab_client, administrator_client, card_model, parent):
    activate = reverse("classifier:model_version_activate", args=[parent.pk])
    assert activate not in lab_client.get(reverse("classifier:model_version_list")).content.decode()
    assert activate in administrator_client.get(reverse("classifier:model_version_list")).content.decode()


# --- One version ---------------------------------------------------------------------------------------


def test_the_detail_page_says_the_figures_in_words(pathologist_client, card_model):
    page = _detail(pathologist_client, card_model)

    assert "90.0 % (180 of 200 images right)" in page
    assert "0.875" in page
    assert "150 of 200 (75.0 %)" in page
    assert "3 of 150 (2.00 %)" in page
    assert "8 pseudo-slides of 25 cells, 1 of them out of domain" in page
    assert "95.0 % of 20 distinct cells right by majority vote" in page
    assert "97.5 % (39 of 40 images right)" in page
    assert page.count("not measured") >= 2  # PBC test: auto-acceptable and wrong among them


def test_the_review_threshold_is_explained_in_one_sentence(pathologist_client, card_model):
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk]))
    page = response.context["page"]

    assert page.threshold_text == (
        "A cell the model is less than 80.0 % sure of (0.8000) always waits for a pathologist; at or "
        "above it, when the cell and its slide are inside the validated domain, it may be confirmed in "
        "bulk. Chosen as the "
        "lowest confidence at which 99% of validation predictions are right."
    )
    assert page.review_fraction == "12.5 % of 400 validation predictions"
    assert page.threshold_text in response.content.decode()


def test_the_detail_page_shows_the_validated_domains_with_their_counts(pathologist_client, card_model):
    page = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk])).context[
        "page"
    ]

    assert [(s.name, s.validation_images, s.fit_cells) for s in page.domains] == [
        ("Kaggle blood-cells (BCCD smears, one lab)", "123", "77"),
        ("PBC (CellaVision DM96, Hospital Clinic of Barcelona)", "not measured", "88"),
    ]


def test_the_confusion_matrix_is_a_table_with_recall(pathologist_client, card_model):
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk]))
    table = _set(response.context["page"], "site_test").confusion

    assert table.labels == ["Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"]
    assert [[cell["count"] for cell in row["cells"]] for row in table.rows] == CONFUSION
    assert [row["recall"] for row in table.rows] == ["100.0 %", "90.0 %", "80.0 %", "90.0 %"]
    assert (
        _set(response.context["page"], "pbc_test").confusion is None
    )  # PBC test has none in evaluation.json
    assert "<caption" in response.content.decode()


def test_the_detail_page_links_the_registered_figures(pathologist_client, card_model):
    page = _detail(pathologist_client, card_model)

    for name in ("confusion_site_test.png", "training_curves.png"):
        assert reverse("classifier:model_version_image", args=[card_model.pk, name]) in page
    assert "notes.txt" not in page
    assert '<th scope="col">loss</th>' in page  # the training history as a table
    assert "0.4000" in page


def test_the_detail_page_shows_lineage_from_the_card(pathologist_client, card_model, parent):
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk]))
    lineage = response.context["page"].lineage

    assert (lineage.parent, lineage.parent_pk) == ("tiny-parent", parent.pk)
    assert lineage.ancestors == [("tiny-root", None), ("tiny-parent", parent.pk)]
    assert "adapted from tiny-parent for this test" in response.content.decode()


def test_the_detail_page_says_who_registered_and_activated_it_when(
    pathologist_client, card_model, parent, administrator
):
    other = model_version_make("tiny-next")
    model_version_activate(actor=administrator, model_version=other)
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk]))

    entries = [(e.what, e.who, e.detail) for e in response.context["history"]]
    assert entries == [
        ("Model version registered", "system", "from tiny-card"),
        ("Model version activated", administrator.username, "replacing tiny-parent"),
        ("Replaced", administrator.username, "tiny-next was activated instead"),
    ]
    events = AuditEvent.objects.filter(
        action=AuditAction.MODEL_VERSION_ACTIVATED, object_id=str(card_model.pk)
    )
    assert response.context["history"][1].at == events.get().created_at


def test_the_parent_page_says_it_was_replaced(pathologist_client, card_model, parent, administrator):
    entries = [
        (e.what, e.detail)
        for e in pathologist_client.get(reverse("classifier:model_version_detail", args=[parent.pk])).context[
            "history"
        ]
    ]

    assert entries == [("Replaced", "tiny-card was activated instead")]


def test_only_auditors_get_the_link_to_the_audit_trail(lab_client, pathologist_client, card_model):
    link = f"{reverse('audit:event_list')}?object_type=classifier.modelversion&amp;object_id={card_model.pk}"
    assert link in _detail(pathologist_client, card_model)
    assert link not in _detail(lab_client, card_model)


# --- An adapted version (ml.adapt's card) --------------------------------------------------------------

ADAPTED_CARD = {
    "version": "tiny-lab",
    "parent_version": "tiny-card",
    "lineage": ["tiny-card"],
    "derivation": "adapted from tiny-card on one lab's verified cells (16 trained on, 4 held out)",
    "review_threshold_per_set": {"val_kaggle": 0.85, "lab_holdout": 0.6},
    "data": {"train_sources": "kaggle+lab", "validation_images": {"val_kaggle": 50, "val_lab": 4}},
    "domain": {"fit_cells": {"kaggle": 30}, "lab_in_domain": False, "lab_rule": "it had 4 held-out cells"},
    "metrics": {
        "validation": {
            "lab_holdout": {
                "adapted": {
                    "n": 4,
                    "accuracy": 0.75,
                    "macro_f1": 0.7,
                    "auto_accept": {"cells": 4, "accepted": 0, "accepted_wrong": 0, "slides": 1},
                },
                "parent": {"n": 4, "accuracy": 0.5, "macro_f1": 0.4},
            }
        }
    },
    "adaptation": {"history": [{"epoch": 1, "loss": 1.25}]},
}
ADAPTED_CONFUSION = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


def _version_with_files(models_root: Path, name: str, card: dict, evaluation: dict, **fields) -> ModelVersion:
    """A version row whose card and evaluation lie in its directory, hashed as registration does."""
    directory = models_root / name
    directory.mkdir()
    (directory / "model_card.json").write_text(json.dumps(card))
    (directory / "evaluation.json").write_text(json.dumps(evaluation))
    hashes = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in directory.iterdir()}
    return model_version_make(
        name,
        directory=name,
        file_hashes=hashes,
        metrics=card["metrics"],
        validated_domains=validated_domains(card),
        **fields,
    )


@pytest.fixture
def adapted(models_root, db) -> ModelVersion:
    evaluation = {
        "results": {"lab_holdout": {"adapted": {"labels": CLASSES, "confusion_matrix": ADAPTED_CONFUSION}}}
    }
    return _version_with_files(models_root, "tiny-lab", ADAPTED_CARD, evaluation, review_threshold=0.85)


def test_an_adapted_version_shows_the_lab_figures_beside_its_parents(pathologist_client, adapted):
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[adapted.pk]))
    page = response.context["page"]
    lab = _set(page, "lab_holdout")

    assert (lab.kind, lab.title) == ("validation", "This lab's verified cells held out from adaptation")
    assert lab.figures.accuracy == "75.0 % (3 of 4 images right)"
    assert lab.parent_figures.accuracy == "50.0 % (2 of 4 images right)"
    assert (lab.figures.auto_acceptable, lab.figures.wrong_among_accepted) == (
        "0 of 4 (0.0 %)",
        "none accepted",
    )
    assert lab.parent_figures.auto_acceptable == "not measured"
    assert [[cell["count"] for cell in row["cells"]] for row in lab.confusion.rows] == ADAPTED_CONFUSION
    assert "parent: 50.0 % (2 of 4 images right)" in response.content.decode()


def test_an_adapted_version_says_its_lab_is_not_in_the_domain_yet(pathologist_client, adapted):
    page = pathologist_client.get(reverse("classifier:model_version_detail", args=[adapted.pk])).context[
        "page"
    ]

    assert [(s.name, s.validation_images, s.fit_cells) for s in page.domains] == [
        ("Kaggle blood-cells (BCCD smears, one lab)", "50", "30"),
        ("This lab's verified cells (ml.adapt)", "4", "not in the domain check"),
    ]
    assert page.lab_domain_note == (
        "This lab is not in the validated domain yet: its slides are reviewed cell by cell "
        "(it had 4 held-out cells)."
    )
    assert page.threshold_per_set == [
        ("This lab's verified cells held out from adaptation", "60.0 %"),
        ("Kaggle blood-cells, validation groups", "85.0 %"),
    ]
    assert page.review_fraction == "not measured"
    assert (page.history_columns, page.history_rows) == (["epoch", "loss"], [["1", "1.2500"]])
    assert page.training_curves_image == ""


# --- A card without the fields, or files that changed ---------------------------------------------------


def test_a_version_without_card_or_figures_says_not_measured(pathologist_client, db):
    bare = model_version_make("bare", domain_cell_threshold=None, domain_slide_threshold=None)
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[bare.pk]))
    page, text = response.context["page"], response.content.decode()

    assert page.sets == []
    assert page.review_fraction == "not measured"
    assert "without domain statistics nothing is auto-acceptable" in page.threshold_text
    assert page.problems == ["No model_card.json was registered for bare."]
    assert "Not measured: the card holds no evaluated set." in text
    assert "Training curves: not measured." in text
    assert "none: trained from scratch" in text


def test_a_set_missing_some_figures_says_which_were_not_measured(pathologist_client, db):
    partial = model_version_make(
        "partial", metrics={"odd_set": {"accuracy": 0.5, "auto_accept": {"cells": 10}}}
    )
    figures = (
        pathologist_client.get(reverse("classifier:model_version_detail", args=[partial.pk]))
        .context["page"]
        .sets[0]
        .figures
    )

    assert figures.accuracy == "50.0 %"
    assert figures.macro_f1 == figures.auto_acceptable == figures.wrong_among_accepted == "not measured"


def test_figures_that_are_not_numbers_are_not_measured(pathologist_client, db):
    odd = model_version_make("odd", metrics={"x_test": {"accuracy": "high", "n": True, "macro_f1": None}})
    figures = (
        pathologist_client.get(reverse("classifier:model_version_detail", args=[odd.pk]))
        .context["page"]
        .sets[0]
        .figures
    )

    assert (figures.accuracy, figures.macro_f1) == ("not measured", "not measured")


def test_a_set_with_only_auto_acceptance_is_still_listed(pathologist_client, db):
    only = model_version_make(
        "only", metrics={"lab_x": {"auto_accept": {"cells": 8, "accepted": 2, "accepted_wrong": 1}}}
    )
    figures = (
        pathologist_client.get(reverse("classifier:model_version_detail", args=[only.pk]))
        .context["page"]
        .sets[0]
        .figures
    )

    assert (figures.accuracy, figures.auto_acceptable) == ("not measured", "2 of 8 (25.0 %)")
    assert figures.wrong_among_accepted == "1 of 2 (50.00 %)"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_figure_that_is_not_finite_is_not_measured(value):
    figures = set_figures({"n": 10, "accuracy": value, "macro_f1": value})

    assert (figures.accuracy, figures.macro_f1) == ("not measured", "not measured")


@pytest.mark.parametrize(
    "result",
    [
        None,
        {},
        {"labels": [], "confusion_matrix": []},
        {"labels": CLASSES, "confusion_matrix": CONFUSION[:3]},  # a row missing
        {"labels": CLASSES, "confusion_matrix": [row[:3] for row in CONFUSION]},  # a column missing
        {"labels": "EOSINOPHIL", "confusion_matrix": CONFUSION},
        {"adapted": {"labels": CLASSES}},
    ],
)
def test_a_malformed_confusion_matrix_is_not_measured(result):
    assert confusion_table(result) is None


def test_a_changed_card_is_not_shown_and_the_page_says_why(pathologist_client, card_model, card_model_dir):
    card = json.loads((card_model_dir / "model_card.json").read_text())
    card["parent_version"] = "somebody-else"
    (card_model_dir / "model_card.json").write_text(json.dumps(card))
    response = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk]))
    page = response.context["page"]

    assert page.problems == ["model_card.json of tiny-card has changed since registration (sha256 mismatch)."]
    assert page.lineage.parent == ""  # not read from a card that is not the registered one
    assert _set(page, "site_test").figures.accuracy.startswith(
        "90.0 %"
    )  # the registered metrics, from the database
    assert "has changed since registration" in response.content.decode()


def test_a_missing_evaluation_leaves_the_tables_not_measured(pathologist_client, card_model, card_model_dir):
    (card_model_dir / "evaluation.json").unlink()
    page = pathologist_client.get(reverse("classifier:model_version_detail", args=[card_model.pk])).context[
        "page"
    ]

    assert _set(page, "site_test").confusion is None
    assert page.problems[0].startswith("evaluation.json of tiny-card cannot be read on this server")


def test_an_unknown_version_is_404(pathologist_client, db):
    assert pathologist_client.get(reverse("classifier:model_version_detail", args=[999])).status_code == 404


# --- The figure view ------------------------------------------------------------------------------------


def test_the_figure_view_serves_a_registered_image_as_registered(pathologist_client, card_model):
    response = _image(pathologist_client, card_model, "training_curves.png")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == CURVES_PNG
    assert response["Cache-Control"] == "private, max-age=3600"


@pytest.mark.parametrize("name", ["model_card.json", "evaluation.json", "notes.txt", "model.tflite"])
def test_the_figure_view_refuses_registered_files_that_are_not_images(pathologist_client, card_model, name):
    assert name in card_model.file_hashes
    assert _image(pathologist_client, card_model, name).status_code == 404


def test_the_figure_view_refuses_an_image_added_after_registration(
    pathologist_client, card_model, card_model_dir
):
    (card_model_dir / "extra.png").write_bytes(CURVES_PNG)
    assert _image(pathologist_client, card_model, "extra.png").status_code == 404


def test_the_figure_view_refuses_a_changed_image(pathologist_client, card_model, card_model_dir):
    (card_model_dir / "training_curves.png").write_bytes(CONFUSION_PNG)
    response = _image(pathologist_client, card_model, "training_curves.png")

    assert response.status_code == 409
    assert b"changed since registration" in response.content
    assert CONFUSION_PNG not in response.content


def test_the_figure_view_refuses_a_deleted_image(pathologist_client, card_model, card_model_dir):
    (card_model_dir / "training_curves.png").unlink()
    assert _image(pathologist_client, card_model, "training_curves.png").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "../tiny-card/training_curves.png",
        "..%2Ftiny-card%2Ftraining_curves.png",
        "%2e%2e%2fsecret.png",
        "..",
        ".hidden.png",
        "sub%2Ftraining_curves.png",
        "%2Fetc%2Fpasswd",
        "training_curves.png%00.png",
    ],
)
def test_the_figure_view_refuses_traversal(pathologist_client, card_model, models_root, path):
    (models_root / "secret.png").write_bytes(CURVES_PNG)
    url = reverse("classifier:model_version_list") + f"{card_model.pk}/files/{path}"
    response = pathologist_client.get(url)

    assert response.status_code == 404
    assert CURVES_PNG not in response.content


def test_the_figure_view_refuses_a_registered_name_that_leads_out_of_the_directory(
    pathologist_client, db, models_root
):
    """A recorded hash is not enough: the file must lie in the model's own directory."""
    outside = models_root / "outside.png"
    outside.write_bytes(CURVES_PNG)
    directory = models_root / "linked"
    directory.mkdir()
    os.symlink(outside, directory / "curves.png")
    digest = hashlib.sha256(CURVES_PNG).hexdigest()
    linked = model_version_make("linked", directory="linked", file_hashes={"curves.png": digest})

    assert _image(pathologist_client, linked, "curves.png").status_code == 404


def test_the_figure_view_refuses_a_sub_folder_name_even_if_recorded(pathologist_client, db, models_root):
    (models_root / "nested" / "sub").mkdir(parents=True)
    (models_root / "nested" / "sub" / "x.png").write_bytes(CURVES_PNG)
    digest = hashlib.sha256(CURVES_PNG).hexdigest()
    nested = model_version_make("nested", directory="nested", file_hashes={"sub/x.png": digest})
    url = reverse("classifier:model_version_list") + f"{nested.pk}/files/sub/x.png"

    assert pathologist_client.get(url).status_code == 404


# --- Who may see the pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_name", ["lab_client", "pathologist_client", "administrator_client"])
def test_every_role_may_read_the_models_pages(request, client_name, card_model):
    client = request.getfixturevalue(client_name)
    assert client.get(reverse("classifier:model_version_list")).status_code == 200
    assert client.get(reverse("classifier:model_version_detail", args=[card_model.pk])).status_code == 200
    assert _image(client, card_model, "training_curves.png").status_code == 200


def test_a_user_without_a_role_is_refused_the_models_pages(outsider, card_model):
    from django.test import Client

    client = Client()
    client.force_login(outsider)
    assert client.get(reverse("classifier:model_version_list")).status_code == 403
    assert client.get(reverse("classifier:model_version_detail", args=[card_model.pk])).status_code == 403
    assert _image(client, card_model, "training_curves.png").status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client, card_model):
    for url in (
        reverse("classifier:model_version_detail", args=[card_model.pk]),
        reverse("classifier:model_version_image", args=[card_model.pk, "training_curves.png"]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_the_pages_are_read_only(administrator_client, card_model):
    for url in (
        reverse("classifier:model_version_detail", args=[card_model.pk]),
        reverse("classifier:model_version_image", args=[card_model.pk, "training_curves.png"]),
    ):
        assert administrator_client.post(url).status_code == 405
