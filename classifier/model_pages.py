"""What the Models pages say about a model version, in plain words, from what was registered.

Every figure comes from the version's card (its ``metrics`` as copied at registration, and the
card file itself) or its ``evaluation.json``, read through ``classifier.model_files`` so that a
changed file is never shown as the registered one. A figure a card does not hold is "not measured".
"""

import math
from dataclasses import dataclass, field, replace
from typing import Any

from audit.models import AuditEvent
from classifier.confidence import confidence_percent
from classifier.model_files import (
    CARD_FILE,
    EVALUATION_FILE,
    RegisteredFileError,
    registered_images,
    registered_json_read,
)
from classifier.models import CellClass, ModelVersion

NOT_MEASURED = "not measured"

# Evaluated sets as ml.finalise (test sets) and ml.adapt (validation sets) name them: (short, long).
SET_TITLES = {
    "kaggle_test": ("Kaggle TEST", "Kaggle blood-cells, official TEST set"),
    "pbc_test": ("PBC test", "PBC (another lab), test split"),
    "cellavision_blog": ("cellavision-blog", "cellavision-blog: other labs' CellaVision cells"),
    "lab_holdout": ("This lab, held out", "This lab's verified cells held out from adaptation"),
    "val_kaggle": ("Kaggle validation", "Kaggle blood-cells, validation groups"),
    "val_pbc": ("PBC validation", "PBC, validation split"),
}
# A metrics entry holding any of these is an evaluated set.
FIGURE_KEYS = frozenset({"n", "accuracy", "macro_f1", "auto_accept"})
CONFUSION_IMAGE_PREFIX = "confusion_"
TRAINING_CURVES_IMAGE = "training_curves.png"


def _number(value: Any) -> float | None:
    """A finite number, else None (booleans, text, NaN and infinities are not figures)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _percent(share: float, decimals: int = 1) -> str:
    return f"{100 * share:.{decimals}f} %"


def _of(part: int, whole: int, decimals: int = 1) -> str:
    """E.g. "2,044 of 2,487 (82.2 %)"."""
    return f"{part:,} of {whole:,} ({_percent(part / whole, decimals)})" if whole else f"{part:,} of 0"


def set_titles(key: str) -> tuple[str, str]:
    if key in SET_TITLES:
        return SET_TITLES[key]
    title = key.replace("_", " ")
    return title, title


def class_label(name: str) -> str:
    return CellClass(name).label if name in CellClass.values else str(name)


# --- Figures on one evaluated set ---------------------------------------------------------------------


@dataclass(frozen=True)
class SetFigures:
    """One model's figures on one set of cells: sentences for the detail page, a short form
    ("88.2 %") of each for the list."""

    accuracy: str = NOT_MEASURED
    accuracy_short: str = NOT_MEASURED
    macro_f1: str = NOT_MEASURED
    auto_acceptable: str = NOT_MEASURED
    auto_acceptable_short: str = NOT_MEASURED
    wrong_among_accepted: str = NOT_MEASURED
    wrong_short: str = NOT_MEASURED
    none_accepted: bool = False
    slides: str = ""
    cell_level: str = ""


def set_figures(metrics: dict) -> SetFigures:
    n, accuracy = _count(metrics.get("n")), _number(metrics.get("accuracy"))
    macro_f1 = _number(metrics.get("macro_f1"))
    return SetFigures(
        **_accuracy_texts(accuracy, n),
        macro_f1=f"{macro_f1:.3f}" if macro_f1 is not None else NOT_MEASURED,
        **_auto_accept_texts(metrics.get("auto_accept")),
        cell_level=_cell_level_text(metrics.get("cell_level")),
    )


def _accuracy_texts(accuracy: float | None, n: int | None) -> dict[str, str]:
    if accuracy is None:
        return {}
    text = _percent(accuracy) + (f" ({round(accuracy * n):,} of {n:,} images right)" if n else "")
    return {"accuracy": text, "accuracy_short": _percent(accuracy)}


def _auto_accept_texts(auto_accept: Any) -> dict[str, str | bool]:
    """Share of cells the domain gate and the threshold let through, and the error among them."""
    figures = auto_accept if isinstance(auto_accept, dict) else {}
    cells, accepted = _count(figures.get("cells")), _count(figures.get("accepted"))
    wrong = _count(figures.get("accepted_wrong"))
    if not cells or accepted is None:
        return {}
    texts = {
        "auto_acceptable": _of(accepted, cells),
        "auto_acceptable_short": _percent(accepted / cells),
        "slides": _slides_text(figures),
    }
    if accepted == 0:
        texts |= {
            "wrong_among_accepted": "none accepted",
            "wrong_short": "none accepted",
            "none_accepted": True,
        }
    elif wrong is not None:
        texts["wrong_among_accepted"] = _of(wrong, accepted, decimals=2)
        texts["wrong_short"] = _percent(wrong / accepted, decimals=2)
    return texts


def _slides_text(figures: dict) -> str:
    slides, outside = _count(figures.get("slides")), _count(figures.get("slides_out_of_domain"))
    size = _count(figures.get("slide_size"))
    if slides is None:
        return ""
    text = f"{slides:,} pseudo-slides" + (f" of {size} cells" if size else "")
    return text + (f", {outside:,} of them out of domain" if outside is not None else "")


def _cell_level_text(cell_level: Any) -> str:
    figures = cell_level if isinstance(cell_level, dict) else {}
    accuracy, cells = _number(figures.get("accuracy")), _count(figures.get("n_cells"))
    if accuracy is None or not cells:
        return ""
    return f"{_percent(accuracy)} of {cells:,} distinct cells right by majority vote over their images"


# --- The evaluated sets of a version -----------------------------------------------------------------


@dataclass(frozen=True)
class ConfusionTable:
    """Rows: the true class; columns: the class the model said."""

    labels: list[str]
    rows: list[dict]  # {"label", "cells": [{"count", "diagonal"}], "total", "recall"}


@dataclass(frozen=True)
class EvaluatedSet:
    key: str
    short_title: str
    title: str
    kind: str  # "test" or "validation"
    figures: SetFigures
    parent_figures: SetFigures | None = None
    confusion: ConfusionTable | None = None
    confusion_image: str = ""


def evaluated_sets(metrics: Any) -> list[EvaluatedSet]:
    """Test sets (ml.finalise: ``metrics[set]``) then validation sets with the parent's figures
    beside them (ml.adapt: ``metrics.validation[set].adapted / .parent``)."""
    metrics = metrics if isinstance(metrics, dict) else {}
    sets = []
    for key, value in _in_set_order(metrics):
        if key != "validation" and isinstance(value, dict) and FIGURE_KEYS & value.keys():
            sets.append(EvaluatedSet(key, *set_titles(key), "test", set_figures(value)))
    validation = metrics.get("validation")
    for key, value in _in_set_order(validation if isinstance(validation, dict) else {}):
        if isinstance(value, dict) and isinstance(value.get("adapted"), dict):
            parent = value.get("parent")
            sets.append(
                EvaluatedSet(
                    key,
                    *set_titles(key),
                    "validation",
                    set_figures(value["adapted"]),
                    set_figures(parent) if isinstance(parent, dict) else None,
                )
            )
    return sets


def _in_set_order(sets: dict) -> list[tuple[str, Any]]:
    """Known sets in SET_TITLES order, then the others by name: PostgreSQL's jsonb keeps no order."""
    known = list(SET_TITLES)
    return sorted(
        sets.items(), key=lambda item: (known.index(item[0]) if item[0] in known else len(known), item[0])
    )


def confusion_table(result: Any) -> ConfusionTable | None:
    """From an evaluation.json result (``labels`` and ``confusion_matrix``); None when absent."""
    result = result if isinstance(result, dict) else {}
    if isinstance(result.get("adapted"), dict):
        result = result["adapted"]
    labels, matrix = result.get("labels"), result.get("confusion_matrix")
    if (
        not isinstance(labels, list)
        or not labels
        or not isinstance(matrix, list)
        or len(matrix) != len(labels)
    ):
        return None
    if not all(isinstance(row, list) and len(row) == len(labels) for row in matrix):
        return None
    rows = []
    for index, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        counts = [_count(count) or 0 for count in row]
        total = sum(counts)
        rows.append(
            {
                "label": class_label(label),
                "cells": [
                    {"count": count, "diagonal": column == index} for column, count in enumerate(counts)
                ],
                "total": total,
                "recall": _percent(counts[index] / total) if total else "–",
            }
        )
    return ConfusionTable(labels=[class_label(label) for label in labels], rows=rows)


def _with_evaluation(sets: list[EvaluatedSet], evaluation: dict, images: list[str]) -> list[EvaluatedSet]:
    results = evaluation.get("results") if isinstance(evaluation.get("results"), dict) else {}
    with_tables = []
    for item in sets:
        image = f"{CONFUSION_IMAGE_PREFIX}{item.key}.png"
        with_tables.append(
            replace(
                item,
                confusion=confusion_table(results.get(item.key)),
                confusion_image=image if image in images else "",
            )
        )
    return with_tables


# --- Review threshold, validated domains, lineage -----------------------------------------------------


def review_threshold_text(model_version: ModelVersion, card: dict) -> str:
    """The threshold in one sentence: what happens below it, and the rule it was chosen by."""
    threshold = model_version.review_threshold
    below = (
        f"A cell the model is less than {confidence_percent(threshold)} sure of ({threshold:.4f}) "
        "always waits for a pathologist"
    )
    if model_version.has_domain_statistics:
        sentence = (
            f"{below}; at or above it, when the cell and its slide are inside the validated domain, "
            "it may be confirmed in bulk."
        )
    else:
        sentence = (
            f"{below}, and so does every other cell: without domain statistics nothing is auto-acceptable."
        )
    recorded = model_version.validated_domains if isinstance(model_version.validated_domains, dict) else {}
    if recorded.get("per_source_review_thresholds"):
        sentence += (
            " Each cell is then held to the threshold of the training source it lies nearest to"
            " (see Validated domains); a source with too few distinct validated cells has none, so"
            " every cell nearest to it is reviewed."
        )
    rule = card.get("review_threshold_rule")
    return sentence + (f" Chosen as the {rule}." if isinstance(rule, str) and rule else "")


def threshold_per_set(card: dict) -> list[tuple[str, str]]:
    """The threshold each validation set needed on its own (ml.adapt keeps the largest)."""
    per_set = card.get("review_threshold_per_set")
    per_set = per_set if isinstance(per_set, dict) else {}
    return [
        (set_titles(key)[1], confidence_percent(value))
        for key, value in _in_set_order(per_set)
        if _number(value) is not None
    ]


def review_fraction_text(metrics: Any) -> str:
    validation = metrics.get("validation") if isinstance(metrics, dict) else None
    calibrated = validation.get("calibrated") if isinstance(validation, dict) else None
    fraction = (
        _number(calibrated.get("review_fraction_at_threshold")) if isinstance(calibrated, dict) else None
    )
    if fraction is None:
        return NOT_MEASURED
    n = _count(calibrated.get("n"))
    return _percent(fraction) + (f" of {n:,} validation predictions" if n else " of validation predictions")


NOT_IN_DOMAIN_CHECK = "not in the domain check"


@dataclass(frozen=True)
class DomainSource:
    name: str
    validation_images: str
    fit_cells: str
    # The source's own review threshold (per-source models, ml.domain review-thresholds); None when
    # the model has one threshold for every source.
    review_threshold: float | None = None
    review_threshold_validated: bool = False

    @property
    def summary(self) -> str:
        if self.validation_images == NOT_MEASURED:
            text = f"{self.name} · validation images not recorded"
        else:
            text = f"{self.name} · {self.validation_images} validation images"
        return text + (f" ({NOT_IN_DOMAIN_CHECK})" if self.fit_cells == NOT_IN_DOMAIN_CHECK else "")


def domain_sources(model_version: ModelVersion, card: dict) -> list[DomainSource]:
    """The validated domains recorded at registration, with the card's domain-fit counts. A source
    the domain statistics were not fitted on (an adapted lab with too few held-out cells) says so."""
    domain = card.get("domain") if isinstance(card.get("domain"), dict) else {}
    fit_cells = domain.get("fit_cells") if isinstance(domain.get("fit_cells"), dict) else {}
    recorded = model_version.validated_domains if isinstance(model_version.validated_domains, dict) else {}
    sources = []
    for source in recorded.get("sources") or []:
        if not isinstance(source, dict):
            continue
        validation, fitted = (
            _count(source.get("validation_images")),
            _count(fit_cells.get(source.get("source"))),
        )
        sources.append(
            DomainSource(
                name=str(source.get("name") or source.get("source")),
                validation_images=f"{validation:,}" if validation is not None else NOT_MEASURED,
                fit_cells=_fit_cells_text(model_version, fit_cells, fitted),
                review_threshold=_number(source.get("review_threshold")),
                review_threshold_validated=bool(source.get("review_threshold_validated")),
            )
        )
    return sources


def _fit_cells_text(model_version: ModelVersion, fit_cells: dict, fitted: int | None) -> str:
    if fitted is not None:
        return f"{fitted:,}"
    if not model_version.has_domain_statistics:
        return "no domain check"
    return NOT_IN_DOMAIN_CHECK if fit_cells else NOT_MEASURED


def train_images_text(model_version: ModelVersion) -> str:
    recorded = model_version.validated_domains if isinstance(model_version.validated_domains, dict) else {}
    images = _count(recorded.get("train_images"))
    return f"{images:,}" if images is not None else ""


def lab_domain_note(card: dict) -> str:
    """Why an adapted model's lab is not (yet) in its domain; empty when that does not apply."""
    domain = card.get("domain") if isinstance(card.get("domain"), dict) else {}
    if domain.get("lab_in_domain") is False:
        rule = domain.get("lab_rule")
        return "This lab is not in the validated domain yet: its slides are reviewed cell by cell" + (
            f" ({rule})." if isinstance(rule, str) and rule else "."
        )
    return ""


@dataclass(frozen=True)
class Lineage:
    parent: str = ""
    parent_pk: int | None = None
    ancestors: list[tuple[str, int | None]] = field(default_factory=list)  # oldest first
    derivation: str = ""
    created: str = ""
    command: str = ""


def lineage(card: dict, registered: dict[str, int]) -> Lineage:
    """Parent and ancestors from the card, each linked when it is registered here."""
    parent = card.get("parent_version")
    parent = parent if isinstance(parent, str) else ""
    ancestors = card.get("lineage") if isinstance(card.get("lineage"), list) else ([parent] if parent else [])
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    return Lineage(
        parent=parent,
        parent_pk=registered.get(parent),
        ancestors=[(str(name), registered.get(str(name))) for name in ancestors],
        derivation=str(card.get("derivation") or ""),
        created=str(card.get("created") or ""),
        command=str(training.get("command") or ""),
    )


def training_history(card: dict) -> tuple[list[str], list[list[str]]]:
    """The per-epoch table behind the training curves (training or adaptation history)."""
    sources = [card.get("training"), card.get("adaptation")]
    history = next(
        (s["history"] for s in sources if isinstance(s, dict) and isinstance(s.get("history"), list)), []
    )
    history = [row for row in history if isinstance(row, dict)]
    columns = [key for key in dict.fromkeys(k for row in history for k in row) if key != "epoch"]
    rows = []
    for row in history:
        values = [_number(row.get(column)) for column in columns]
        rows.append([str(row.get("epoch", "")), *(f"{v:.4f}" if v is not None else "–" for v in values)])
    return (["epoch", *columns] if history else []), rows


# --- The pages -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredFiles:
    card: dict
    evaluation: dict
    images: list[str]
    problems: list[str]


def registered_files(model_version: ModelVersion, *, with_evaluation: bool) -> RegisteredFiles:
    """The card (and evaluation) as registered; what cannot be read is named in ``problems``."""
    problems: list[str] = []
    card = _json_or_problem(model_version, CARD_FILE, problems)
    evaluation = _json_or_problem(model_version, EVALUATION_FILE, problems) if with_evaluation else {}
    return RegisteredFiles(card, evaluation, registered_images(model_version), problems)


def _json_or_problem(model_version: ModelVersion, name: str, problems: list[str]) -> dict:
    if name not in (model_version.file_hashes or {}):
        if name == CARD_FILE:
            problems.append(f"No {name} was registered for {model_version.name}.")
        return {}
    try:
        return registered_json_read(model_version, name)
    except RegisteredFileError as error:
        problems.append(str(error))
        return {}


@dataclass(frozen=True)
class ModelVersionRow:
    """One row of the list page."""

    model_version: ModelVersion
    sets: list[EvaluatedSet]
    domains: list[DomainSource]
    train_images: str
    lineage: Lineage
    problems: list[str]
    last_activation: AuditEvent | None


def model_version_row(
    model_version: ModelVersion, registered: dict[str, int], last_activation: AuditEvent | None
) -> ModelVersionRow:
    files = registered_files(model_version, with_evaluation=False)
    return ModelVersionRow(
        model_version=model_version,
        sets=evaluated_sets(model_version.metrics),
        domains=domain_sources(model_version, files.card),
        train_images=train_images_text(model_version),
        lineage=lineage(files.card, registered),
        problems=files.problems,
        last_activation=last_activation,
    )


@dataclass(frozen=True)
class ModelVersionPage:
    """Everything the detail page shows."""

    model_version: ModelVersion
    sets: list[EvaluatedSet]
    threshold_text: str
    threshold_per_set: list[tuple[str, str]]
    review_fraction: str
    domains: list[DomainSource]
    train_images: str
    lab_domain_note: str
    lineage: Lineage
    training_curves_image: str
    other_images: list[str]
    history_columns: list[str]
    history_rows: list[list[str]]
    problems: list[str]

    @property
    def has_cell_level(self) -> bool:
        return any(item.figures.cell_level for item in self.sets)


def model_version_page(model_version: ModelVersion, registered: dict[str, int]) -> ModelVersionPage:
    files = registered_files(model_version, with_evaluation=True)
    sets = _with_evaluation(evaluated_sets(model_version.metrics), files.evaluation, files.images)
    shown = {item.confusion_image for item in sets} | {TRAINING_CURVES_IMAGE}
    columns, rows = training_history(files.card)
    return ModelVersionPage(
        model_version=model_version,
        sets=sets,
        threshold_text=review_threshold_text(model_version, files.card),
        threshold_per_set=threshold_per_set(files.card),
        review_fraction=review_fraction_text(model_version.metrics),
        domains=domain_sources(model_version, files.card),
        train_images=train_images_text(model_version),
        lab_domain_note=lab_domain_note(files.card),
        lineage=lineage(files.card, registered),
        training_curves_image=TRAINING_CURVES_IMAGE if TRAINING_CURVES_IMAGE in files.images else "",
        other_images=[name for name in files.images if name not in shown],
        history_columns=columns,
        history_rows=rows,
        problems=files.problems,
    )


@dataclass(frozen=True)
class HistoryEntry:
    at: Any  # datetime
    what: str
    who: str
    detail: str


def history_entries(model_version: ModelVersion, events: list[AuditEvent]) -> list[HistoryEntry]:
    """The audit events of ``classifier.selectors.model_version_history`` in words, oldest first."""
    entries = []
    for event in events:
        before = event.before if isinstance(event.before, dict) else {}
        after = event.after if isinstance(event.after, dict) else {}
        if event.object_id != str(model_version.pk):
            what, detail = "Replaced", f"{after.get('active', 'another version')} was activated instead"
        else:
            what = event.get_action_display()
            previous, directory = before.get("active"), after.get("directory")
            detail = f"replacing {previous}" if previous else (f"from {directory}" if directory else "")
        if event.reason:
            detail = f"{detail}; reason: {event.reason}" if detail else f"reason: {event.reason}"
        entries.append(
            HistoryEntry(at=event.created_at, what=what, who=event.actor_username or "–", detail=detail)
        )
    return entries
