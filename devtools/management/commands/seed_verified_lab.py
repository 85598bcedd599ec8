"""manage.py seed_verified_lab --data DIR: a lab's verified cells from a class-folder directory,
made the way a lab makes them, to try (and time) "Adapt to this lab" on real images.

For each slide: upload the cells (validated, audited), submit, classify them in this process
with the active model (the worker's own service), confirm or correct every cell to its folder's
label as the pathologist, and sign with the pathologist's password. The folder's label is the
truth, so a wrong prediction becomes a correction. Development only (devtools).
"""

import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import User
from cases.services import cell_image_create, patient_create, slide_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import CellClass, Prediction
from classifier.services import inference_job_run, slide_submit
from review.selectors import current_predictions
from review.services import prediction_review, slide_sign

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


class Command(BaseCommand):
    help = "Seed signed slides of verified cells from class folders (development: try model adaptation)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--data", type=Path, required=True, help="One folder per class")
        parser.add_argument("--slides", type=int, default=4, help="Cells are dealt over this many slides")
        parser.add_argument("--lab-staff", default="labstaff")
        parser.add_argument("--pathologist", default="pathologist")
        parser.add_argument("--password", required=True, help="The pathologist's password (to sign)")
        parser.add_argument("--tag", default="SEED", help="Prefix of the MRN and accession numbers")

    def handle(self, *args, **options) -> None:
        staff = User.objects.get(username=options["lab_staff"])
        pathologist = User.objects.get(username=options["pathologist"])
        files = self._files(options["data"])
        patient = patient_create(
            actor=staff,
            mrn=f"{options['tag']}-1",
            family_name="Seed",
            given_name="Lab",
            date_of_birth=datetime.date(1970, 1, 1),
            sex="other",
        )
        count = options["slides"]
        for index in range(count):
            dealt = files[index::count]
            slide = slide_create(
                actor=staff,
                patient=patient,
                accession_number=f"{options['tag']}-{index + 1}",
                collected_at=timezone.now() - datetime.timedelta(hours=2),
            )
            self._verify(slide, dealt, staff, pathologist, options["password"])
            self.stdout.write(f"{slide.accession_number}: {len(dealt)} cells verified and signed")

    def _files(self, root: Path) -> list[tuple[Path, str]]:
        files = []
        for folder in sorted(root.iterdir()):
            label = folder.name.upper()
            if folder.is_dir() and label in CellClass.values:
                files += [
                    (path, label)
                    for path in sorted(folder.iterdir())
                    if path.suffix.lower() in IMAGE_SUFFIXES
                ]
        if not files:
            raise CommandError(f"No class folders with images in {root}.")
        return files

    def _verify(self, slide, dealt, staff: User, pathologist: User, password: str) -> None:  # noqa: ANN001
        truth = {}
        limits = UploadLimits.from_settings()
        for path, label in dealt:
            image = image_validate(data=path.read_bytes(), original_filename=path.name, limits=limits)
            truth[cell_image_create(actor=staff, slide=slide, image=image).pk] = label
        job = slide_submit(actor=staff, slide=slide)
        inference_job_run(job_id=job.pk)
        for prediction in current_predictions(Prediction.objects.filter(cell_image__slide=slide)):
            label = truth[prediction.cell_image_id]
            reason = "" if label == prediction.label else "Seeded from the labelled folder"
            prediction_review(actor=pathologist, prediction=prediction, label=label, reason=reason)
        request = RequestFactory().post("/review/sign/", REMOTE_ADDR="127.0.0.1")
        slide.refresh_from_db()
        slide_sign(
            actor=pathologist,
            slide=slide,
            password=password,
            request=request,
            domain_acknowledged=True,
            count_acknowledged=True,
        )
