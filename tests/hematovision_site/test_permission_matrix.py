"""Every URL name × every kind of user, with the expected answer in each cell.

A URL added to the project without a row here makes ``test_every_url_name_is_in_the_matrix``
fail, so nobody can add an endpoint without deciding who may use it.
"""

import datetime
from dataclasses import dataclass, field

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditAction
from audit.services import audit_event_record
from cases.models import Patient, Slide, SlideStatus
from review.models import (
    Consult,
    ConsultCell,
    ProficiencyAssignment,
    ProficiencyAttempt,
    ProficiencySet,
    ProficiencySetItem,
    SlideSignature,
)
from tests.conftest import PASSWORD
from tests.factories import (
    cell_image_make,
    distinct_png,
    field_image_make,
    inference_job_make,
    model_version_make,
    prediction_make,
    slide_domain_assessment_make,
)

ROLES = ("anonymous", "lab_staff", "pathologist", "administrator", "outsider", "trainee", "consultant")
MODEL_FIGURE = "training_curves.png"  # a registered figure of the "model_version" object
LOGIN = "login"  # a redirect to the login page
# The trainee and consultant rows default to the outsider's answer: everywhere but their own pages
# they hold no role that counts. The fixtures give both a reason to hope (a set with the matrix's
# cell is assigned to the trainee, the consultant has an open consult on the matrix's slide).
AS_OUTSIDER = "as outsider"


@dataclass(frozen=True)
class Cell:
    """Expected answers, in the order of ROLES."""

    anonymous: int | str
    lab_staff: int | str
    pathologist: int | str
    administrator: int | str
    outsider: int | str
    method: str = "get"
    kwargs: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)
    # URL arguments after the objects' primary keys, as they are (a file name).
    extra_args: tuple[str, ...] = ()
    trainee: int | str = AS_OUTSIDER
    consultant: int | str = AS_OUTSIDER

    def answer(self, role: str) -> int | str:
        expected = getattr(self, role)
        return self.outsider if expected == AS_OUTSIDER else expected


CLINICAL_READ = dict(anonymous=LOGIN, lab_staff=200, pathologist=200, administrator=403, outsider=403)
CLINICAL_WRITE = dict(anonymous=LOGIN, lab_staff=200, pathologist=403, administrator=403, outsider=403)
AUDIT_READ = dict(anonymous=LOGIN, lab_staff=403, pathologist=200, administrator=200, outsider=403)
USER_ADMIN = dict(anonymous=LOGIN, lab_staff=403, pathologist=403, administrator=200, outsider=403)
USER_ACTION = dict(anonymous=LOGIN, lab_staff=403, pathologist=403, administrator=302, outsider=403)
API_CLINICAL_READ = dict(anonymous=401, lab_staff=200, pathologist=200, administrator=403, outsider=403)
API_AUDIT = dict(anonymous=401, lab_staff=403, pathologist=200, administrator=200, outsider=403)
API_USERS = dict(anonymous=401, lab_staff=403, pathologist=403, administrator=200, outsider=403)
REFUSED_TO_ALL = dict(anonymous=401, lab_staff=403, pathologist=403, administrator=403, outsider=403)
QUICK_OWNER = dict(anonymous=LOGIN, lab_staff=200, pathologist=404, administrator=404, outsider=403)
API_LOGGED_IN = dict(anonymous=401, lab_staff=200, pathologist=200, administrator=200, outsider=200)
REVIEW_PAGE = dict(anonymous=LOGIN, lab_staff=403, pathologist=200, administrator=403, outsider=403)
REVIEW_ACTION = dict(anonymous=LOGIN, lab_staff=403, pathologist=302, administrator=403, outsider=403)
TEACH_PAGE = REVIEW_PAGE
TRAINEE_PAGE = dict(
    anonymous=LOGIN, lab_staff=403, pathologist=403, administrator=403, outsider=403, trainee=200
)
GRADCAM = dict(anonymous=LOGIN, lab_staff=202, pathologist=202, administrator=403, outsider=403)
API_TEACH = dict(anonymous=401, lab_staff=403, pathologist=200, administrator=403, outsider=403)
API_TRAINEE = dict(
    anonymous=401, lab_staff=403, pathologist=403, administrator=403, outsider=403, trainee=200
)
API_CONSULT = dict(**API_TEACH, consultant=200)

MATRIX: dict[str, Cell] = {
    "home": Cell(anonymous=LOGIN, lab_staff=200, pathologist=200, administrator=200, outsider=200),
    "health": Cell(anonymous=200, lab_staff=200, pathologist=200, administrator=200, outsider=200),
    # Open to all like /health/; here no worker runs and no model is verified: not ready, alike for all.
    "ready": Cell(anonymous=503, lab_staff=503, pathologist=503, administrator=503, outsider=503),
    "accounts:login": Cell(anonymous=200, lab_staff=302, pathologist=302, administrator=302, outsider=302),
    "accounts:logout": Cell(
        anonymous=302, lab_staff=302, pathologist=302, administrator=302, outsider=302, method="post"
    ),
    "accounts:user_list": Cell(**USER_ADMIN),
    "accounts:user_create": Cell(**USER_ADMIN),
    "accounts:user_detail": Cell(**USER_ADMIN, kwargs=("member",)),
    "accounts:user_password_reset": Cell(**USER_ADMIN, kwargs=("member",)),
    "accounts:user_role_change": Cell(
        **USER_ACTION, method="post", kwargs=("member",), data={"role": "PATHOLOGIST"}
    ),
    "accounts:user_deactivate": Cell(
        **USER_ACTION, method="post", kwargs=("member",), data={"reason": "Left the lab", "confirm": "on"}
    ),
    "accounts:user_unlock": Cell(**USER_ACTION, method="post", kwargs=("member",)),
    "accounts:user_reactivate": Cell(**USER_ACTION, method="post", kwargs=("inactive_member",)),
    "audit:event_list": Cell(**AUDIT_READ),
    "audit:event_export_csv": Cell(**AUDIT_READ),
    "cases:patient_list": Cell(**CLINICAL_READ),
    "cases:patient_detail": Cell(**CLINICAL_READ, kwargs=("patient",)),
    "cases:patient_create": Cell(**CLINICAL_WRITE),
    "cases:patient_update": Cell(**CLINICAL_WRITE, kwargs=("patient",)),
    "cases:slide_list": Cell(**CLINICAL_READ),
    "cases:slide_detail": Cell(**CLINICAL_READ, kwargs=("slide",)),
    "cases:slide_create": Cell(**CLINICAL_WRITE, kwargs=("patient",)),
    "cases:slide_update": Cell(**CLINICAL_WRITE, kwargs=("slide",)),
    "cases:cell_image_upload": Cell(**CLINICAL_WRITE, kwargs=("slide",)),
    "cases:cell_image_file": Cell(**CLINICAL_READ, kwargs=("cell_image",)),
    "cases:field_image_file": Cell(**CLINICAL_READ, kwargs=("field_image",)),
    # The confirmation page; lab staff only (the pathologist may exclude a cell, not delete it).
    "cases:cell_image_delete": Cell(**CLINICAL_WRITE, kwargs=("cell_image",)),
    "api:token": Cell(
        anonymous=403, lab_staff=200, pathologist=200, administrator=200, outsider=200, method="post"
    ),
    "api:schema": Cell(**API_LOGGED_IN),
    "api:docs": Cell(**{**API_LOGGED_IN, "anonymous": LOGIN}),
    "api:patient-list": Cell(**API_CLINICAL_READ),
    "api:patient-detail": Cell(**API_CLINICAL_READ, kwargs=("patient",)),
    "api:slide-list": Cell(**API_CLINICAL_READ),
    "api:slide-detail": Cell(**API_CLINICAL_READ, kwargs=("slide",)),
    "api:slide-cell-images": Cell(**API_CLINICAL_READ, kwargs=("slide",)),
    "api:cell-image-list": Cell(**API_CLINICAL_READ),
    "api:cell-image-detail": Cell(**API_CLINICAL_READ, kwargs=("cell_image",)),
    "api:cell-image-file": Cell(**API_CLINICAL_READ, kwargs=("cell_image",)),
    "api:slide-field-images": Cell(**API_CLINICAL_READ, kwargs=("slide",)),
    "api:field-image-list": Cell(**API_CLINICAL_READ),
    "api:field-image-detail": Cell(**API_CLINICAL_READ, kwargs=("field_image",)),
    "api:field-image-file": Cell(**API_CLINICAL_READ, kwargs=("field_image",)),
    "api:audit-event-list": Cell(**API_AUDIT),
    "api:audit-event-detail": Cell(**API_AUDIT, kwargs=("event",)),
    "api:user-list": Cell(**API_USERS),
    "api:user-detail": Cell(**API_USERS, kwargs=("member",)),
    "api:user-role": Cell(**API_USERS, method="post", kwargs=("member",), data={"role": "PATHOLOGIST"}),
    "api:user-deactivate": Cell(**API_USERS, method="post", kwargs=("member",), data={"reason": "Left"}),
    "api:user-reactivate": Cell(**API_USERS, method="post", kwargs=("inactive_member",)),
    "api:user-password": Cell(
        **API_USERS, method="post", kwargs=("member",), data={"new_password": "an-entirely-new-passphrase-7"}
    ),
    # Inference pipeline (classifier). A quick classification is private to whoever uploaded it.
    "classifier:slide_submit": Cell(**{**CLINICAL_WRITE, "lab_staff": 302}, method="post", kwargs=("slide",)),
    "classifier:inference_job_progress": Cell(**CLINICAL_READ, kwargs=("job",)),
    "classifier:quick_classify": Cell(**{**CLINICAL_READ, "administrator": 200}),
    "classifier:quick_classify_result": Cell(**QUICK_OWNER, kwargs=("quick",)),
    "classifier:quick_classify_status": Cell(**QUICK_OWNER, kwargs=("quick",)),
    "classifier:quick_classify_image": Cell(**QUICK_OWNER, kwargs=("quick",)),
    "classifier:model_version_list": Cell(**{**CLINICAL_READ, "administrator": 200}),
    "classifier:model_version_activate": Cell(
        **USER_ACTION, method="post", kwargs=("model_version",), data={"password": PASSWORD}
    ),
    "classifier:model_version_detail": Cell(
        **{**CLINICAL_READ, "administrator": 200}, kwargs=("model_version",)
    ),
    "classifier:model_version_image": Cell(
        **{**CLINICAL_READ, "administrator": 200}, kwargs=("model_version",), extra_args=(MODEL_FIGURE,)
    ),
    "classifier:model_version_compare": Cell(
        **{**CLINICAL_READ, "administrator": 200}, kwargs=("model_version",)
    ),
    # Adapting the model to the lab: admins only.
    "review:lab_adaptation": Cell(**USER_ADMIN),
    "classifier:adaptation_run_detail": Cell(**USER_ADMIN, kwargs=("adaptation_run",)),
    "classifier:adaptation_run_progress": Cell(**USER_ADMIN, kwargs=("adaptation_run",)),
    "classifier:adaptation_run_cancel": Cell(**USER_ACTION, method="post", kwargs=("adaptation_run",)),
    "api:adaptation-run-list": Cell(**API_USERS),
    "api:adaptation-run-detail": Cell(**API_USERS, kwargs=("adaptation_run",)),
    "api:adaptation-run-lab-cells": Cell(**API_USERS),
    "api:adaptation-run-cancel": Cell(**API_USERS, method="post", kwargs=("adaptation_run",)),
    "api:slide-inference-submit": Cell(
        anonymous=401,
        lab_staff=202,
        pathologist=403,
        administrator=403,
        outsider=403,
        method="post",
        kwargs=("slide",),
    ),
    "api:slide-inference-predictions": Cell(**API_CLINICAL_READ, kwargs=("slide",)),
    "api:slide-inference-domain": Cell(**API_CLINICAL_READ, kwargs=("slide",)),
    "api:inference-job-list": Cell(**API_CLINICAL_READ),
    "api:inference-job-detail": Cell(**API_CLINICAL_READ, kwargs=("job",)),
    "api:model-version-list": Cell(**{**API_LOGGED_IN, "outsider": 403}),
    "api:model-version-detail": Cell(**{**API_LOGGED_IN, "outsider": 403}, kwargs=("model_version",)),
    "api:model-version-activate": Cell(
        **API_USERS, method="post", kwargs=("model_version",), data={"password": PASSWORD}
    ),
    "api:quick-classification-list": Cell(
        anonymous=401, lab_staff=400, pathologist=400, administrator=400, outsider=403, method="post"
    ),
    "api:quick-classification-detail": Cell(
        anonymous=401, lab_staff=200, pathologist=404, administrator=404, outsider=403, kwargs=("quick",)
    ),
    "review:queue": Cell(**REVIEW_PAGE),
    "review:slide_review": Cell(**REVIEW_PAGE, kwargs=("slide",)),
    "review:slide_bulk_confirm": Cell(**REVIEW_ACTION, method="post", kwargs=("slide",)),
    "review:slide_differential": Cell(**CLINICAL_READ, kwargs=("slide",)),
    "review:slide_sign": Cell(**REVIEW_PAGE, kwargs=("slide",)),
    "review:slide_amend": Cell(**REVIEW_PAGE, kwargs=("slide",)),
    "review:slide_report": Cell(**CLINICAL_READ, kwargs=("signed_slide",)),
    "review:slide_report_pdf": Cell(**CLINICAL_READ, kwargs=("signed_slide",)),
    "review:worklist": Cell(**REVIEW_PAGE),
    "review:slide_export": Cell(**CLINICAL_READ, kwargs=("slide",)),
    "review:patient_export": Cell(**CLINICAL_READ, kwargs=("patient",)),
    "review:range_export": Cell(**CLINICAL_READ),
    "review:prediction_review": Cell(
        **REVIEW_ACTION, method="post", kwargs=("prediction",), data={"label": "NEUTROPHIL"}
    ),
    # The slide is a draft: the services refuse, the page says so and goes back (302).
    "review:slide_classification_retry": Cell(**REVIEW_ACTION, method="post", kwargs=("slide",)),
    # A form-encoded body is not the gallery's JSON: the pathologist gets 400, the others 403.
    "review:slide_gallery_review": Cell(
        **{**REVIEW_ACTION, "pathologist": 400}, method="post", kwargs=("slide",), data={"action": "confirm"}
    ),
    "review:cell_image_exclude": Cell(
        **REVIEW_ACTION,
        method="post",
        kwargs=("cell_image",),
        data={"category": "artefact", "reason": "Smear"},
    ),
    "review:cell_image_include": Cell(
        **REVIEW_ACTION, method="post", kwargs=("cell_image",), data={"reason": "Readable after all"}
    ),
    # Counting rules of a slide: the target (lab staff or pathologist), the WBC count (lab staff).
    "review:slide_target_count": Cell(
        **{**CLINICAL_WRITE, "lab_staff": 302, "pathologist": 302},
        method="post",
        kwargs=("slide",),
        data={"target": "200"},
    ),
    "review:slide_wbc_count": Cell(
        **{**CLINICAL_WRITE, "lab_staff": 302}, method="post", kwargs=("slide",), data={"wbc_count": "7.5"}
    ),
    # The lab's class list: configuration every role may read; admins change it.
    "review:class_list": Cell(
        anonymous=LOGIN, lab_staff=200, pathologist=200, administrator=200, outsider=403
    ),
    "review:class_create": Cell(**USER_ADMIN),
    "review:class_update": Cell(**USER_ADMIN, kwargs=("differential_class",)),
    "review:class_move": Cell(
        **USER_ACTION, method="post", kwargs=("differential_class",), data={"direction": "down"}
    ),
    "review:counting_default_target": Cell(**USER_ACTION, method="post", data={"default_target": "200"}),
    "review:field_detail": Cell(**CLINICAL_READ, kwargs=("field_image",)),
    # The field is not located yet: the service refuses, the page says so and goes back (302).
    "review:field_cell_add": Cell(
        **REVIEW_ACTION,
        method="post",
        kwargs=("field_image",),
        data={"x": 10, "y": 10, "width": 40, "height": 40},
    ),
    "review:prediction_gradcam": Cell(**GRADCAM, kwargs=("prediction",)),
    "review:prediction_gradcam_request": Cell(**GRADCAM, method="post", kwargs=("prediction",)),
    # The slide is a draft: a pathologist's review is refused (400), everyone else's 401/403.
    "api:prediction-review": Cell(
        **{**REFUSED_TO_ALL, "pathologist": 400},
        method="post",
        kwargs=("prediction",),
        data={"label": "MONOCYTE"},
    ),
    "api:cell-image-exclusion": Cell(
        **{**REFUSED_TO_ALL, "pathologist": 400},
        method="post",
        kwargs=("cell_image",),
        data={"category": "artefact", "reason": "Smear"},
    ),
    "api:slide-classification-retry": Cell(
        **{**REFUSED_TO_ALL, "pathologist": 400}, method="post", kwargs=("slide",)
    ),
    "api:export-slide": Cell(**API_CLINICAL_READ, kwargs=("slide",)),
    "api:export-patient": Cell(**API_CLINICAL_READ, kwargs=("patient",)),
    "api:export-range": Cell(
        **API_CLINICAL_READ, data={"collected_from": "2026-01-01", "collected_to": "2026-01-31", "as": "json"}
    ),
    # Teaching: pathologists build and read sets; the trainee takes the set assigned to them.
    "teaching:set_list": Cell(**TEACH_PAGE),
    "teaching:set_create": Cell(**TEACH_PAGE),
    "teaching:set_detail": Cell(**TEACH_PAGE, kwargs=("proficiency_set",)),
    # No trainee or group chosen: refused with a message, back to the set (302).
    "teaching:set_assign": Cell(**REVIEW_ACTION, method="post", kwargs=("proficiency_set",)),
    "teaching:set_results_export": Cell(**TEACH_PAGE, kwargs=("proficiency_set",)),
    "teaching:my_sets": Cell(**TRAINEE_PAGE),
    "teaching:attempt_start": Cell(
        **{**TRAINEE_PAGE, "trainee": 302}, method="post", kwargs=("proficiency_set",)
    ),
    "teaching:attempt_take": Cell(**TRAINEE_PAGE, kwargs=("attempt",)),
    # No cell named: 400 for the trainee.
    "teaching:attempt_answer": Cell(
        **{**TRAINEE_PAGE, "trainee": 400}, method="post", kwargs=("attempt",), data={"label": "NEUTROPHIL"}
    ),
    "teaching:attempt_finish": Cell(**{**TRAINEE_PAGE, "trainee": 302}, method="post", kwargs=("attempt",)),
    "teaching:attempt_result": Cell(**{**TEACH_PAGE, "trainee": 200}, kwargs=("finished_attempt",)),
    "teaching:item_image": Cell(**{**TEACH_PAGE, "trainee": 200}, kwargs=("proficiency_set", "item")),
    # No overlay yet: 202 with its status; the trainee has finished an attempt of the set.
    "teaching:item_gradcam": Cell(
        **{**TEACH_PAGE, "pathologist": 202, "trainee": 202}, kwargs=("proficiency_set", "item")
    ),
    "teaching:item_gradcam_request": Cell(
        **{**TEACH_PAGE, "pathologist": 202, "trainee": 202},
        method="post",
        kwargs=("proficiency_set", "item"),
    ),
    # Consults: the pathologist requested the matrix's consult, addressed to the consultant.
    "consults:inbox": Cell(**{**REVIEW_PAGE, "consultant": 200}),
    "consults:consult_request": Cell(**REVIEW_PAGE, kwargs=("slide",)),
    "consults:consult_detail": Cell(**{**REVIEW_PAGE, "consultant": 200}, kwargs=("consult",)),
    # Only the consultant labels and answers; another pathologist finds no such consult (404).
    "consults:consult_labels": Cell(
        **{**REVIEW_PAGE, "pathologist": 404, "consultant": 302}, method="post", kwargs=("consult",)
    ),
    "consults:consult_answer": Cell(
        **{**REVIEW_PAGE, "pathologist": 404, "consultant": 302},
        method="post",
        kwargs=("consult",),
        data={"opinion": "Agree: neutrophilia."},
    ),
    "consults:consult_close": Cell(**REVIEW_ACTION, method="post", kwargs=("consult",)),
    "consults:consult_cell_image": Cell(
        **{**REVIEW_PAGE, "consultant": 200}, kwargs=("consult", "consult_cell")
    ),
    # The API of consults: as the pages, by token too.
    "api:consult-list": Cell(**API_CONSULT),
    "api:consult-detail": Cell(**API_CONSULT, kwargs=("consult",)),
    "api:consult-cell-image": Cell(**API_CONSULT, kwargs=("consult", "consult_cell")),
    # No cell named: 400 for the consultant; the pathologist does not answer this consult (404).
    "api:consult-labels": Cell(
        **{**API_CONSULT, "pathologist": 404, "consultant": 400},
        method="post",
        kwargs=("consult",),
        data={"label": "NEUTROPHIL"},
    ),
    "api:consult-answer": Cell(
        **{**API_CONSULT, "pathologist": 404},
        method="post",
        kwargs=("consult",),
        data={"opinion": "Agree: neutrophilia."},
    ),
    "api:consult-close": Cell(**{**API_CONSULT, "consultant": 403}, method="post", kwargs=("consult",)),
    # The API of proficiency sets: pathologists build, assign and read; the trainee takes theirs.
    "api:proficiency-set-list": Cell(**API_TEACH),
    "api:proficiency-set-detail": Cell(**API_TEACH, kwargs=("proficiency_set",)),
    "api:proficiency-set-source-cells": Cell(**API_TEACH),
    "api:proficiency-set-results": Cell(**API_TEACH, kwargs=("proficiency_set",)),
    "api:proficiency-set-item-image": Cell(**API_TEACH, kwargs=("proficiency_set", "item")),
    # No trainee or group chosen: the service refuses (400).
    "api:proficiency-set-assign": Cell(
        **{**API_TEACH, "pathologist": 400}, method="post", kwargs=("proficiency_set",)
    ),
    "api:my-proficiency-set-list": Cell(**API_TRAINEE),
    # The attempt in progress is resumed.
    "api:my-proficiency-set-start": Cell(**API_TRAINEE, method="post", kwargs=("proficiency_set",)),
    "api:my-proficiency-set-item-image": Cell(**API_TRAINEE, kwargs=("proficiency_set", "item")),
    "api:proficiency-attempt-list": Cell(**API_TRAINEE),
    "api:proficiency-attempt-detail": Cell(**API_TRAINEE, kwargs=("attempt",)),
    # No cell named: 400 for the trainee.
    "api:proficiency-attempt-answer": Cell(
        **{**API_TRAINEE, "trainee": 400}, method="post", kwargs=("attempt",), data={"label": "NEUTROPHIL"}
    ),
    "api:proficiency-attempt-finish": Cell(**API_TRAINEE, method="post", kwargs=("attempt",)),
    "api:proficiency-attempt-result": Cell(**API_TRAINEE, kwargs=("finished_attempt",)),
}

# Unsafe methods on URLs whose matrix row is a GET: writes must be refused to readers too.
WRITES: dict[tuple[str, str], Cell] = {
    ("api:patient-list", "post"): Cell(
        anonymous=401, lab_staff=400, pathologist=403, administrator=403, outsider=403
    ),
    ("api:patient-detail", "patch"): Cell(
        anonymous=401, lab_staff=200, pathologist=403, administrator=403, outsider=403, kwargs=("patient",)
    ),
    ("api:slide-list", "post"): Cell(
        anonymous=401, lab_staff=400, pathologist=403, administrator=403, outsider=403
    ),
    ("api:slide-detail", "patch"): Cell(
        anonymous=401, lab_staff=200, pathologist=403, administrator=403, outsider=403, kwargs=("slide",)
    ),
    ("api:slide-cell-images", "post"): Cell(
        anonymous=401, lab_staff=400, pathologist=403, administrator=403, outsider=403, kwargs=("slide",)
    ),
    ("api:user-list", "post"): Cell(
        anonymous=401, lab_staff=403, pathologist=403, administrator=400, outsider=403
    ),
    # Methods a view does not offer are not declared for anyone, hence refused outright.
    ("api:audit-event-list", "post"): Cell(**REFUSED_TO_ALL),
    ("api:audit-event-detail", "delete"): Cell(**REFUSED_TO_ALL, kwargs=("event",)),
    ("api:patient-detail", "delete"): Cell(**REFUSED_TO_ALL, kwargs=("patient",)),
    ("api:user-detail", "delete"): Cell(**REFUSED_TO_ALL, kwargs=("member",)),
    ("cases:patient_create", "post"): Cell(**{**CLINICAL_WRITE, "lab_staff": 200}),
    # The cell image has a prediction: lab staff's deletion is refused (409), no one else may ask.
    ("cases:cell_image_delete", "post"): Cell(
        **{**CLINICAL_WRITE, "lab_staff": 409}, kwargs=("cell_image",), data={"reason": "Wrong slide"}
    ),
    # The deactivation's confirmation page.
    ("accounts:user_deactivate", "get"): Cell(**USER_ADMIN, kwargs=("member",)),
    # Saving a class (admins), and the class list refusing writes (it only reads).
    ("review:class_update", "post"): Cell(
        **USER_ACTION,
        kwargs=("differential_class",),
        data={"name": "Blast cell", "counting": "wbc", "is_active": "on"},
    ),
    ("review:class_list", "post"): Cell(
        anonymous=405, lab_staff=405, pathologist=405, administrator=405, outsider=405
    ),
    # Too few verified cells here: an admin's start is refused with the reason (400), others 403.
    ("api:adaptation-run-list", "post"): Cell(
        anonymous=401, lab_staff=403, pathologist=403, administrator=400, outsider=403
    ),
    ("review:lab_adaptation", "post"): Cell(**{**USER_ADMIN, "administrator": 409}),
    ("cases:patient_list", "post"): Cell(
        anonymous=405, lab_staff=405, pathologist=405, administrator=405, outsider=405
    ),
    # An empty request: the pathologist's is refused as incomplete (400), everyone else's 401/403.
    ("api:consult-list", "post"): Cell(**{**API_TEACH, "pathologist": 400}),
    ("api:proficiency-set-list", "post"): Cell(**{**API_TEACH, "pathologist": 400}),
    # Consults and attempts are never deleted.
    ("api:consult-detail", "delete"): Cell(**REFUSED_TO_ALL, kwargs=("consult",)),
    ("api:proficiency-attempt-detail", "delete"): Cell(**REFUSED_TO_ALL, kwargs=("attempt",)),
}


def all_url_names(patterns: list | None = None, namespace: str = "") -> set[str]:
    names = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= all_url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def test_every_url_name_is_in_the_matrix():
    assert all_url_names() == set(MATRIX)


@pytest.fixture
def objects(lab_staff, pathologist, trainee, consultant, make_user, models_root):
    patient = Patient.objects.create(
        mrn="M-1",
        family_name="Doe",
        given_name="Jane",
        date_of_birth="1980-01-01",
        sex="female",
        created_by=lab_staff,
    )
    slide = Slide.objects.create(
        patient=patient, accession_number="S-1", collected_at="2026-01-01T10:00Z", created_by=lab_staff
    )
    inactive_member = make_user("former", None, is_active=False)
    found = classifier_objects(lab_staff, slide, models_root) | {
        "patient": patient,
        "slide": slide,
        "cell_image": cell_image_make(slide, lab_staff, distinct_png(1), name="c.png"),
        "field_image": field_image_make(slide, lab_staff, distinct_png(3, size=(64, 48)), name="f.png"),
        "member": make_user("member", None),
        "inactive_member": inactive_member,
        "event": audit_event_record(action=AuditAction.LOGIN, actor=lab_staff),
    }
    found |= review_objects(found, signer=make_user("signer", None))
    found |= teaching_objects(found, pathologist, trainee)
    return found | consult_objects(found, pathologist, consultant)


def teaching_objects(found: dict, pathologist: User, trainee: User) -> dict:
    """A set holding the matrix's cell, assigned to the trainee: an attempt in progress and a
    finished one (written directly: the set's source slide need not be signed here)."""
    proficiency_set = ProficiencySet.objects.create(name="Matrix set", created_by=pathologist)
    prediction = found["prediction"]
    item = ProficiencySetItem.objects.create(
        proficiency_set=proficiency_set,
        position=1,
        cell_image=prediction.cell_image,
        prediction=prediction,
        reference_label="NEUTROPHIL",
        model_label=prediction.label,
        model_confidence=prediction.confidence,
    )
    ProficiencyAssignment.objects.create(
        proficiency_set=proficiency_set, trainee=trainee, assigned_by=pathologist
    )
    now = timezone.now()
    finished = ProficiencyAttempt.objects.create(
        proficiency_set=proficiency_set, trainee=trainee, started_at=now, finished_at=now
    )
    attempt = ProficiencyAttempt.objects.create(
        proficiency_set=proficiency_set, trainee=trainee, started_at=now
    )
    return {
        "proficiency_set": proficiency_set,
        "item": item,
        "attempt": attempt,
        "finished_attempt": finished,
    }


def consult_objects(found: dict, pathologist: User, consultant: User) -> dict:
    """An open consult on the matrix's slide, addressed to the consultant, window not over."""
    consult = Consult.objects.create(
        slide=found["slide"],
        requested_by=pathologist,
        consultant=consultant,
        question="Neutrophil or band?",
        requested_at=timezone.now(),
        access_until=timezone.now() + datetime.timedelta(days=1),
    )
    consult_cell = ConsultCell.objects.create(consult=consult, position=1, prediction=found["prediction"])
    return {"consult": consult, "consult_cell": consult_cell}


def review_objects(found: dict, signer: User) -> dict:
    """A prediction by an older model version, so the slide can still be submitted; and another
    slide of the patient with a signed report."""
    older = model_version_make("m-0")
    job = inference_job_make(found["slide"], older, found["job"].requested_by)
    prediction = prediction_make(found["cell_image"], older, "NEUTROPHIL", 0.85, job=job)
    slide_domain_assessment_make(found["slide"], job)
    from review.models import DifferentialClass

    return {
        "prediction": prediction,
        "signed_slide": signed_slide_make(found["patient"], signer),
        "differential_class": DifferentialClass.objects.get(code="BLAST"),
    }


def signed_slide_make(patient: Patient, signer: User) -> Slide:
    slide = Slide.objects.create(
        patient=patient,
        accession_number="S-SIGNED",
        collected_at="2026-01-02T10:00Z",
        status=SlideStatus.SIGNED,
        created_by=signer,
    )
    SlideSignature.objects.create(
        slide=slide,
        version=1,
        signer=signer,
        signer_full_name="Sig Ner",
        signed_at=timezone.now(),
        differential={
            "total": 1,
            "excluded": 0,
            "classes": {"NEUTROPHIL": {"count": 1, "percent": 100.0, "flag": "high"}},
        },
    )
    return slide


def classifier_objects(lab_staff, slide, models_root) -> dict:  # noqa: ANN001
    import hashlib

    from django.core.files.base import ContentFile

    from classifier.models import AdaptationRun, QuickClassification

    figure = distinct_png(3)
    (models_root / "m-1").mkdir()
    (models_root / "m-1" / MODEL_FIGURE).write_bytes(figure)
    model_version = model_version_make(
        "m-1", is_active=True, file_hashes={MODEL_FIGURE: hashlib.sha256(figure).hexdigest()}
    )
    quick = QuickClassification(
        requested_by=lab_staff, model_version=model_version, original_filename="q.png"
    )
    quick.image.save("q.png", ContentFile(distinct_png(2)), save=True)
    job = inference_job_make(slide, model_version, lab_staff)
    # Queued (no worker here): cancelling it is immediate.
    adaptation_run = AdaptationRun.objects.create(base_model_version=model_version, class_counts={})
    return {"model_version": model_version, "quick": quick, "job": job, "adaptation_run": adaptation_run}


def _client(request, role: str) -> tuple[Client, object]:
    client = Client()
    if role == "anonymous":
        return client, None
    user = request.getfixturevalue(role)
    client.force_login(user)
    return client, user


def _ask(
    client: Client, user: User | None, url_name: str, method: str, cell: Cell, objects: dict
) -> HttpResponse:
    url = reverse(url_name, args=[*(objects[name].pk for name in cell.kwargs), *cell.extra_args])
    data = cell.data
    if url_name == "api:token":
        data = (
            {"username": user.username, "password": PASSWORD} if user else {"username": "x", "password": "y"}
        )
    if method in ("patch",):
        return client.patch(url, data={}, content_type="application/json")
    if method == "delete":
        return client.delete(url)
    return getattr(client, method)(url, data)


def _check(response: HttpResponse, expected: int | str) -> None:
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    else:
        assert response.status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url_name", sorted(MATRIX))
def test_matrix(request, objects, url_name, role):
    cell = MATRIX[url_name]
    client, user = _client(request, role)
    response = _ask(client, user, url_name, cell.method, cell, objects)
    _check(response, cell.answer(role))


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("url_name", "method"), sorted(WRITES))
def test_unsafe_methods(request, objects, url_name, method, role):
    cell = WRITES[(url_name, method)]
    client, user = _client(request, role)
    _check(_ask(client, user, url_name, method, cell, objects), cell.answer(role))
