"""The bulk seeder behind the scale tests, the page benchmark and the load test: a small plan
writes exactly the rows it reports, in every slide status, and extends the audit hash chain."""

import pytest

from accounts.roles import Role
from audit.models import AuditAction, AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import audit_event_record
from cases.models import CellImage, Patient, Slide, SlideStatus
from classifier.models import Prediction
from devtools.scale_pages import scale_users
from devtools.scale_seed import STATUS_CYCLE, SeedPlan, scale_dataset_create, scale_dataset_load
from review.models import Review, SlideSignature
from tests.factories import model_version_make

pytestmark = pytest.mark.django_db

# Ten slides of two cells: one draft, three submitted, four in review, two signed.
PLAN = SeedPlan(prefix="UNIT", cells=20, cells_per_slide=2, slides_per_patient=2, seed=1)


@pytest.fixture
def seeded():
    users = scale_users()
    return scale_dataset_create(
        plan=PLAN,
        lab_staff=users[Role.LAB_STAFF],
        pathologist=users[Role.PATHOLOGIST],
        model_version=model_version_make("scale-unit", is_active=True),
    )


def test_a_small_plan_writes_the_rows_it_reports(seeded):
    assert (len(seeded.patients), len(seeded.slides)) == (5, 10)
    assert [slide.status for slide in seeded.slides] == list(STATUS_CYCLE)
    assert CellImage.objects.count() == seeded.cells == 20
    # Every slide but the draft is classified.
    assert Prediction.objects.count() == seeded.predictions == 18
    # Half the cells of in-review slides, all of signed ones, and every tenth review looked at again.
    assert Review.objects.count() == seeded.reviews == 4 + 4 + 1
    assert Review.objects.filter(supersedes__isnull=False).count() == 1
    assert set(SlideSignature.objects.values_list("slide__status", flat=True)) == {SlideStatus.SIGNED}
    assert SlideSignature.objects.count() == 2


def test_the_seeded_rows_are_audited_on_the_hash_chain_after_earlier_events(audit_ids_from_start):
    users = scale_users()
    earlier = audit_event_record(action=AuditAction.LOGIN, actor=users[Role.LAB_STAFF])

    scale_dataset_create(
        plan=PLAN,
        lab_staff=users[Role.LAB_STAFF],
        pathologist=users[Role.PATHOLOGIST],
        model_version=model_version_make("scale-unit"),
    )

    verification = audit_chain_verify()
    assert verification.intact
    # Five patients, ten slides, twenty cells, nine reviews and two signatures, after the login.
    assert verification.checked == AuditEvent.objects.count() == 1 + 5 + 10 + 20 + 9 + 2
    assert AuditEvent.objects.order_by("id").first() == earlier
    assert (
        AuditEvent.objects.filter(action=AuditAction.SLIDE_SIGNED, actor=users[Role.PATHOLOGIST]).count() == 2
    )


def test_a_seeded_dataset_is_found_again_by_its_prefix(seeded):
    loaded = scale_dataset_load(prefix=PLAN.prefix)

    assert [slide.pk for slide in loaded.slides] == [slide.pk for slide in seeded.slides]
    assert [patient.pk for patient in loaded.patients] == [patient.pk for patient in seeded.patients]
    assert (loaded.cells, loaded.predictions, loaded.reviews) == (20, 18, 9)
    assert loaded.slide_in(SlideStatus.SIGNED) == Slide.objects.filter(status=SlideStatus.SIGNED).first()
    assert Patient.objects.filter(mrn__startswith="UNIT-").count() == 5
