"""A large, realistic-looking dataset written in bulk: patients, slides in every status, cell images,
predictions, reviews (some superseded), signatures and the audit events they would have produced.

For the scale tests, the page benchmark and the load test only: rows go in with ``bulk_create``
(seconds for 10,000 cells instead of minutes through the services). Never for a clinical database.
"""

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from accounts.models import User
from audit.chain import GENESIS_HASH, audit_event_hash
from audit.models import AuditAction, AuditEvent
from audit.services import _CHAIN_LOCK_KEY
from cases.models import CellImage, Patient, Sex, Slide, SlideStatus, Stain
from classifier.models import (
    PROBABILITY_FIELDS,
    CellClass,
    InferenceJob,
    InferenceJobStatus,
    ModelVersion,
    Prediction,
)
from review.models import SIGNATURE_MEANING, Review, ReviewDecision, SlideSignature
from review.selectors import slide_differential

# Of every ten slides: one draft (not classified yet), one submitted (being classified), two ready
# for review, four in review (half of their cells reviewed), two signed (every cell reviewed).
STATUS_CYCLE = (
    SlideStatus.DRAFT,
    SlideStatus.SUBMITTED,
    *(SlideStatus.READY_FOR_REVIEW,) * 2,
    *(SlideStatus.IN_REVIEW,) * 4,
    *(SlideStatus.SIGNED,) * 2,
)
# Roughly the class mix of a normal adult differential.
CLASS_WEIGHTS = {
    CellClass.NEUTROPHIL: 60,
    CellClass.LYMPHOCYTE: 30,
    CellClass.MONOCYTE: 7,
    CellClass.EOSINOPHIL: 3,
}
BATCH_SIZE = 2000


@dataclass
class ScaleDataset:
    """What was written, and one example slide per status for pages that show a single slide."""

    prefix: str
    patients: list[Patient] = field(default_factory=list)
    slides: list[Slide] = field(default_factory=list)
    cells: int = 0
    predictions: int = 0
    reviews: int = 0

    def slide_in(self, status: SlideStatus) -> Slide:
        return next(slide for slide in self.slides if slide.status == status)

    @property
    def first_collected(self) -> date:
        return min(slide.collected_at for slide in self.slides).date()

    @property
    def last_collected(self) -> date:
        return max(slide.collected_at for slide in self.slides).date()


@dataclass(frozen=True)
class SeedPlan:
    prefix: str
    cells: int
    cells_per_slide: int = 100
    slides_per_patient: int = 4
    # Every seeded cell image points at one of these stored files (their content is not checked).
    file_names: tuple[str, ...] = ("cell-images/scale/cell.png",)
    image_format: str = "PNG"
    seed: int = 0


def scale_dataset_load(*, prefix: str) -> ScaleDataset:
    """A dataset seeded earlier (by a previous run that kept its database)."""
    slides = list(
        Slide.objects.filter(accession_number__startswith=f"{prefix}-").order_by("accession_number")
    )
    return ScaleDataset(
        prefix=prefix,
        patients=list(Patient.objects.filter(mrn__startswith=f"{prefix}-").order_by("mrn")),
        slides=slides,
        cells=CellImage.objects.filter(slide__in=slides).count(),
        predictions=Prediction.objects.filter(cell_image__slide__in=slides).count(),
        reviews=Review.objects.filter(prediction__cell_image__slide__in=slides).count(),
    )


@transaction.atomic
def scale_dataset_create(
    *, plan: SeedPlan, lab_staff: User, pathologist: User, model_version: ModelVersion
) -> ScaleDataset:
    """Write ``plan.cells`` cell images across slides and everything that hangs off them."""
    writer = _Writer(plan, lab_staff, pathologist, model_version)
    writer.patients_and_slides()
    writer.cells_and_predictions()
    writer.reviews_and_signatures()
    writer.audit_events_flush()
    _statistics_refresh()
    return writer.dataset


def _statistics_refresh() -> None:
    """What autovacuum would do a minute later on a live database. Without it the planner takes the
    freshly filled tables for empty and nests loops over 10,000 rows (seconds per page). Inside the
    transaction, so it also sees the rows this transaction wrote."""
    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in (Patient, Slide, CellImage, InferenceJob, Prediction, Review)]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}, {AuditEvent._meta.db_table}")


class _Writer:
    def __init__(self, plan: SeedPlan, lab_staff: User, pathologist: User, model_version: ModelVersion):
        self.plan, self.lab_staff, self.pathologist = plan, lab_staff, pathologist
        self.model_version = model_version
        # Reproducible made-up data, not security.
        self.random = random.Random(plan.seed)  # noqa: S311
        self.dataset = ScaleDataset(prefix=plan.prefix)
        self.now = datetime.now(tz=UTC)
        self.events: list[AuditEvent] = []
        self.predictions_by_slide: dict[int, list[Prediction]] = {}

    # --- patients, slides --------------------------------------------------------------------------

    def patients_and_slides(self) -> None:
        slide_count = -(-self.plan.cells // self.plan.cells_per_slide)
        patient_count = -(-slide_count // self.plan.slides_per_patient)
        patients = Patient.objects.bulk_create(
            Patient(
                mrn=f"{self.plan.prefix}-P{index:05d}",
                family_name=f"Scale{index:05d}",
                given_name=self.random.choice(("Ada", "Ben", "Cleo", "Dev", "Eva", "Femi")),
                date_of_birth=date(1940, 1, 1) + timedelta(days=self.random.randrange(25_000)),
                sex=self.random.choice((Sex.FEMALE, Sex.MALE)),
                created_by=self.lab_staff,
            )
            for index in range(patient_count)
        )
        slides = Slide.objects.bulk_create(
            Slide(
                accession_number=f"{self.plan.prefix}-S{index:05d}",
                patient=patients[index // self.plan.slides_per_patient],
                # One slide a day, newest first, so a date range picks a predictable share.
                collected_at=self.now - timedelta(days=index, hours=1),
                stain=Stain.WRIGHT_GIEMSA,
                status=STATUS_CYCLE[index % len(STATUS_CYCLE)],
                created_by=self.lab_staff,
            )
            for index in range(slide_count)
        )
        self.dataset.patients, self.dataset.slides = patients, slides
        self._events_for(AuditAction.PATIENT_CREATED, self.lab_staff, patients)
        self._events_for(AuditAction.SLIDE_CREATED, self.lab_staff, slides)

    # --- cells, jobs, predictions ------------------------------------------------------------------

    def cells_and_predictions(self) -> None:
        remaining = self.plan.cells
        for slide in self.dataset.slides:
            count = min(self.plan.cells_per_slide, remaining)
            remaining -= count
            cells = CellImage.objects.bulk_create(self._cell(slide, index) for index in range(count))
            self.dataset.cells += len(cells)
            self._events_for(AuditAction.CELL_IMAGE_UPLOADED, self.lab_staff, cells)
            if slide.status != SlideStatus.DRAFT:
                self._predictions(slide, cells)

    def _cell(self, slide: Slide, index: int) -> CellImage:
        identity = f"{slide.accession_number}/{index}"
        return CellImage(
            slide=slide,
            file=self.plan.file_names[index % len(self.plan.file_names)],
            sha256=hashlib.sha256(identity.encode()).hexdigest(),
            image_format=self.plan.image_format,
            width=360,
            height=363,
            size_bytes=12_000 + index,
            original_filename=f"cell-{index:04d}.png",
            uploaded_by=self.lab_staff,
        )

    def _predictions(self, slide: Slide, cells: list[CellImage]) -> None:
        job = InferenceJob.objects.create(
            slide=slide,
            model_version=self.model_version,
            requested_by=self.lab_staff,
            status=InferenceJobStatus.SUCCEEDED,
            total=len(cells),
            done=len(cells),
            attempts=1,
            started_at=self.now,
            finished_at=self.now,
        )
        predictions = Prediction.objects.bulk_create(
            (self._prediction(cell, job) for cell in cells), batch_size=BATCH_SIZE
        )
        self.predictions_by_slide[slide.pk] = predictions
        self.dataset.predictions += len(predictions)

    def _prediction(self, cell: CellImage, job: InferenceJob) -> Prediction:
        label = self.random.choices(list(CLASS_WEIGHTS), weights=list(CLASS_WEIGHTS.values()))[0]
        confidence = round(self.random.uniform(0.4, 0.999), 4)
        rest = (1.0 - confidence) / 3
        probabilities = {
            field_name: confidence if name == label else rest
            for name, field_name in PROBABILITY_FIELDS.items()
        }
        return Prediction(
            cell_image=cell,
            model_version=self.model_version,
            job=job,
            label=label,
            confidence=confidence,
            inference_ms=round(self.random.uniform(3, 8), 2),
            **probabilities,
        )

    # --- reviews, signatures -----------------------------------------------------------------------

    def reviews_and_signatures(self) -> None:
        first: list[Review] = []
        for slide in self.dataset.slides:
            predictions = self.predictions_by_slide.get(slide.pk, [])
            if slide.status == SlideStatus.IN_REVIEW:
                first += [self._review(p) for p in predictions[::2]]
            elif slide.status == SlideStatus.SIGNED:
                first += [self._review(p) for p in predictions]
        first = Review.objects.bulk_create(first, batch_size=BATCH_SIZE)
        # Every tenth reviewed cell was looked at again: a newer review supersedes the first.
        second = Review.objects.bulk_create(
            (self._review(review.prediction, supersedes=review) for review in first[::10]),
            batch_size=BATCH_SIZE,
        )
        self.dataset.reviews = len(first) + len(second)
        self._events_for(AuditAction.REVIEW_RECORDED, self.pathologist, [*first, *second])
        for slide in self.dataset.slides:
            if slide.status == SlideStatus.SIGNED:
                self._sign(slide)

    def _review(self, prediction: Prediction, supersedes: Review | None = None) -> Review:
        if self.random.random() < 0.9:
            return Review(
                prediction=prediction,
                supersedes=supersedes,
                reviewer=self.pathologist,
                label=prediction.label,
                decision=ReviewDecision.CONFIRMED,
            )
        other = self.random.choice([label for label in CellClass.values if label != prediction.label])
        return Review(
            prediction=prediction,
            supersedes=supersedes,
            reviewer=self.pathologist,
            label=other,
            decision=ReviewDecision.CORRECTED,
            reason="Nuclear shape",
        )

    def _sign(self, slide: Slide) -> None:
        signature = SlideSignature.objects.create(
            slide=slide,
            version=1,
            signer=self.pathologist,
            signer_full_name=self.pathologist.get_full_name() or self.pathologist.username,
            meaning=SIGNATURE_MEANING,
            signed_at=self.now,
            differential=slide_differential(slide=slide).as_dict(),
        )
        self._events_for(AuditAction.SLIDE_SIGNED, self.pathologist, [signature])

    # --- audit trail -------------------------------------------------------------------------------

    def _events_for(self, action: AuditAction, actor: User, rows: list) -> None:
        self.events += [
            AuditEvent(
                created_at=self.now,
                actor=actor,
                actor_username=actor.username,
                action=action,
                object_type=row._meta.label_lower,
                object_id=str(row.pk),
                after=json.loads(json.dumps({"seeded": True}, cls=DjangoJSONEncoder)),
            )
            for row in rows
        ]

    def audit_events_flush(self) -> None:
        """Chain the events onto the current head, as ``audit_event_record`` would one by one."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        for event in self.events:
            event.previous_hash = previous
            event.hash = previous = audit_event_hash(event)
        AuditEvent.objects.bulk_create(self.events, batch_size=BATCH_SIZE)
        self.events = []
