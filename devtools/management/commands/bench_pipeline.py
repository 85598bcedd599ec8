"""Seconds from submitting a slide of N cells (or N whole BCCD fields, ``--fields``) to all
predictions stored, with one worker."""

import tempfile
import time
from pathlib import Path

from celery import current_app as celery_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import User
from cases.models import Patient, Sex, Slide
from cases.services import cell_image_create, field_image_create, patient_create, slide_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import InferenceJob, QuickClassificationStatus
from classifier.services import (
    model_version_active,
    model_version_register_default,
    quick_classification_create,
    slide_submit,
)
from devtools.benchmark import WorkerProcess, queue_name_unique, shared_test_fields, shared_test_images

BENCH_MRN = "BENCH-0000"
TIMEOUT_SECONDS = 600


class Command(BaseCommand):
    help = (
        "Upload N shared TEST cells to a new slide, submit it, and time submit → all predictions "
        "stored, with one worker process started here on a queue of its own."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--cells", type=int, default=100)
        parser.add_argument(
            "--fields",
            type=int,
            default=0,
            help="Upload this many whole BCCD fields of the test split instead (their white cells "
            "are located by the worker) and report the time per field.",
        )

    def handle(self, *args, cells: int, fields: int, **options) -> None:
        if not settings.HEMATOVISION_DEMO_USERS_ALLOWED:
            raise CommandError("The benchmark writes patient records: never run it on a production database.")
        model_version_register_default()
        model_version = model_version_active()
        actor = _bench_user()
        slide = self._slide_upload(actor, cells, fields)
        job, seconds = self._run_with_own_worker(actor, slide)
        self._report(job, seconds, model_version.name)
        if fields:
            self.stdout.write(
                f"{fields} fields, {job.total} white cells located: {seconds / fields:.3f} s per field "
                "(read, locate, crop, store the cells, classify, store the predictions)."
            )

    def _run_with_own_worker(self, actor: User, slide: Slide) -> tuple[InferenceJob, float]:
        """A queue no other worker listens to, so exactly one worker process does the work."""
        queue, previous_queue = queue_name_unique("bench"), celery_app.conf.task_default_queue
        celery_app.conf.task_default_queue = queue
        with tempfile.TemporaryDirectory() as folder:
            log_path = Path(folder) / "worker.log"
            worker = WorkerProcess(queue=queue, environment=_worker_environment(), log_path=log_path)
            worker.start()
            try:
                self._warm_up(actor, worker)
                return self._measure(actor, slide)
            finally:
                worker.stop()
                celery_app.conf.task_default_queue = previous_queue

    def _slide_upload(self, actor: User, cells: int, fields: int) -> Slide:
        patient = Patient.objects.filter(mrn=BENCH_MRN).first() or patient_create(
            actor=actor, mrn=BENCH_MRN, family_name="Benchmark", given_name="Pipeline",
            date_of_birth=timezone.now().date().replace(year=1970), sex=Sex.UNKNOWN,
        )  # fmt: skip
        accession = f"BENCH-{timezone.now():%Y%m%d-%H%M%S}"
        slide = slide_create(
            actor=actor,
            patient=patient,
            accession_number=accession,
            collected_at=timezone.now(),
            stain="wright",
        )
        limits = UploadLimits.from_settings()
        paths, store = (
            (shared_test_fields(fields), field_image_create)
            if fields
            else (shared_test_images(cells), cell_image_create)
        )
        for path in paths:
            image = image_validate(data=path.read_bytes(), original_filename=path.name, limits=limits)
            store(actor=actor, slide=slide, image=image)
        self.stdout.write(f"Uploaded {len(paths)} {'fields' if fields else 'cells'} to slide {accession}.")
        return slide

    def _warm_up(self, actor: User, worker: WorkerProcess) -> None:
        """One quick classification first, so the timing excludes loading the model."""
        image = shared_test_images(1)[0]
        quick = quick_classification_create(
            actor=actor, data=image.read_bytes(), original_filename=image.name
        )
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while quick.status not in (QuickClassificationStatus.SUCCEEDED, QuickClassificationStatus.FAILED):
            if time.monotonic() > deadline:
                raise CommandError(f"Warm-up not classified in time:\n{worker.log_tail()}")
            time.sleep(0.05)
            quick.refresh_from_db()
        if quick.status == QuickClassificationStatus.FAILED:
            raise CommandError(f"Warm-up failed: {quick.error}")

    def _measure(self, actor: User, slide: Slide) -> tuple[InferenceJob, float]:
        started = time.perf_counter()
        job = slide_submit(actor=actor, slide=slide)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not job.is_finished:
            if time.monotonic() > deadline:
                raise CommandError(f"Job {job.pk} not finished within {TIMEOUT_SECONDS}s.")
            time.sleep(0.01)
            job.refresh_from_db()
        return job, time.perf_counter() - started

    def _report(self, job: InferenceJob, seconds: float, model_name: str) -> None:
        stored = job.predictions.count()
        self.stdout.write(
            f"Job {job.pk} {job.status}: {stored} of {job.total} predictions stored "
            f"({job.failed} failed) with model {model_name} on {connection.vendor}.\n"
            f"Submit → all predictions stored: {seconds:.2f} s, {stored / seconds:.1f} cells/s "
            f"(one worker process)."
        )


def _bench_user() -> User:
    user, created = User.objects.get_or_create(
        username="bench-pipeline", defaults={"first_name": "Benchmark"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _worker_environment() -> dict[str, str]:
    """The worker must reach the same database and media folder as this process."""
    database = connection.settings_dict
    environment = {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "HEMATOVISION_MODELS_ROOT": str(settings.HEMATOVISION_MODELS_ROOT),
        # REDIS_URL for the base and production settings, TEST_REDIS_URL for the test settings.
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "TEST_REDIS_URL": settings.CELERY_BROKER_URL,
    }
    if database["ENGINE"].endswith("postgresql"):
        credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
        host = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
        environment["DATABASE_URL"] = f"postgres://{credentials}@{host}/{database['NAME']}"
    else:
        environment["DATABASE_URL"] = f"sqlite:///{database['NAME']}"
    return environment
