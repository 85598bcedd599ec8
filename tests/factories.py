"""Helpers that build test data: patients, slides and cell images; model versions, inference jobs,
predictions and reviews; image bytes generated in memory and uploaded-file objects."""

import datetime
import hashlib
import io
import zipfile
from collections.abc import Iterable

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from django.test import RequestFactory
from django.utils import timezone
from PIL import Image, ImageDraw

from accounts.models import User
from cases.models import CellImage, FieldImage, Patient, Sex, Slide, SlideStatus, Stain
from cases.services import cell_image_create, field_image_create
from cases.uploads import UploadLimits, image_validate
from classifier.models import (
    PROBABILITY_FIELDS,
    CellClass,
    DomainVerdict,
    InferenceJob,
    InferenceJobStatus,
    ModelVersion,
    Prediction,
    SlideDomainAssessment,
)
from review.models import Review
from review.services import prediction_review


def patient_make(created_by: User, mrn: str, **fields) -> Patient:
    """Jane Doe, born 1980-05-17, unless ``fields`` say otherwise."""
    defaults = {
        "family_name": "Doe",
        "given_name": "Jane",
        "date_of_birth": datetime.date(1980, 5, 17),
        "sex": Sex.FEMALE,
    }
    return Patient.objects.create(mrn=mrn, created_by=created_by, **{**defaults, **fields})


def slide_make(patient: Patient, created_by: User, accession_number: str, **fields) -> Slide:
    """A Wright-Giemsa draft collected two hours ago, unless ``fields`` say otherwise."""
    defaults = {
        "collected_at": timezone.now() - datetime.timedelta(hours=2),
        "stain": Stain.WRIGHT_GIEMSA,
        "status": SlideStatus.DRAFT,
    }
    return Slide.objects.create(
        patient=patient, accession_number=accession_number, created_by=created_by, **{**defaults, **fields}
    )


def image_bytes(
    image_format: str = "PNG", size: tuple[int, int] = (24, 18), color: tuple = (180, 40, 90)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=image_format)
    return buffer.getvalue()


def distinct_png(index: int, size: tuple[int, int] = (24, 18)) -> bytes:
    """A different PNG (and sha256) for every index."""
    return image_bytes("PNG", size, (index % 256, (index // 256) % 256, 77))


def uploaded(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def stained_cell_bytes(seed: int, size: int = 48, image_format: str = "PNG") -> bytes:
    """A small distinct image the tiny model can classify: a purple blob on a pale background,
    shifted by the seed."""
    image = Image.new("RGB", (size, size), (235, 220, 225))
    for x in range(size // 4, 3 * size // 4):
        for y in range(size // 4, 3 * size // 4):
            image.putpixel((x, y), (120 + seed % 100, 40, 160))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def cell_image_make(slide: Slide, uploaded_by: User, data: bytes, name: str = "cell.png") -> CellImage:
    """A cell image uploaded the way the lab does it: validated, stored and audited."""
    image = image_validate(data=data, original_filename=name, limits=UploadLimits.from_settings())
    return cell_image_create(actor=uploaded_by, slide=slide, image=image)


def field_image_make(slide: Slide, uploaded_by: User, data: bytes, name: str = "field.png") -> FieldImage:
    """A whole microscope field uploaded the way the lab does it: validated, stored and audited."""
    image = image_validate(data=data, original_filename=name, limits=UploadLimits.from_settings())
    return field_image_create(actor=uploaded_by, slide=slide, image=image)


# A drawn microscope field (as tests/ml/test_locate.py draws them): pale pink-red discs on a grey
# background and, per white cell, a violet cytoplasm with a dark purple nucleus.
FIELD_BACKGROUND = (205, 200, 195)
FIELD_RED_CELL = (215, 160, 165)
FIELD_CYTOPLASM = (200, 180, 205)
FIELD_NUCLEUS = (110, 60, 170)
FIELD_RED_CELL_CENTRES = ((60, 60), (200, 70), (580, 80), (90, 400), (560, 420), (330, 420), (480, 250))


def field_bytes(
    white_cells: Iterable[tuple[int, int]],
    size: tuple[int, int] = (640, 480),
    image_format: str = "PNG",
    red_cells: Iterable[tuple[int, int]] = FIELD_RED_CELL_CENTRES,
) -> bytes:
    """A drawn field: red discs (radius 40) and a white cell (cytoplasm 70, nucleus 45) per centre."""
    image = Image.new("RGB", size, FIELD_BACKGROUND)
    draw = ImageDraw.Draw(image)
    for x, y in red_cells:
        draw.ellipse((x - 40, y - 40, x + 40, y + 40), fill=FIELD_RED_CELL)
    for x, y in white_cells:
        draw.ellipse((x - 70, y - 70, x + 70, y + 70), fill=FIELD_CYTOPLASM)
        draw.ellipse((x - 45, y - 45, x + 45, y + 45), fill=FIELD_NUCLEUS)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def model_version_make(name: str, **fields) -> ModelVersion:
    """A model-version row with no files behind it, for tests that never load the model (a
    registered tiny real model is the ``tiny_model_version`` fixture). Inactive, threshold 0.9,
    domain statistics with cell and slide limits of 1.0, unless ``fields`` say otherwise."""
    defaults = {
        "directory": name,
        "sha256": hashlib.sha256(name.encode()).hexdigest(),
        "file_hashes": {},
        "review_threshold": 0.9,
        "domain_cell_threshold": 1.0,
        "domain_slide_threshold": 1.0,
    }
    return ModelVersion.objects.create(name=name, **{**defaults, **fields})


def inference_job_make(
    slide: Slide,
    model_version: ModelVersion,
    requested_by: User,
    *,
    cell_images: Iterable[CellImage] = (),
    **fields,
) -> InferenceJob:
    """A job row (queued unless ``fields`` say otherwise) for ``cell_images``."""
    job = InferenceJob.objects.create(
        slide=slide, model_version=model_version, requested_by=requested_by, **fields
    )
    job.cell_images.add(*cell_images)
    return job


def probabilities_for(label: str, confidence: float) -> dict[str, float]:
    """``confidence`` for ``label``, the rest shared equally by the other three classes."""
    rest = (1.0 - confidence) / 3
    return {field: confidence if name == label else rest for name, field in PROBABILITY_FIELDS.items()}


def prediction_make(
    cell_image: CellImage,
    model_version: ModelVersion,
    label: str = CellClass.NEUTROPHIL,
    confidence: float = 0.95,
    *,
    job: InferenceJob | None = None,
    **fields,
) -> Prediction:
    """The model's prediction for a cell, written directly (no model run), inside the model's
    domain (score 0.5) unless ``fields`` say otherwise. Without ``job``, in a succeeded one-cell job
    requested by the cell's uploader."""
    if job is None:
        job = inference_job_make(
            cell_image.slide,
            model_version,
            cell_image.uploaded_by,
            status=InferenceJobStatus.SUCCEEDED,
            total=1,
            done=1,
        )
    return Prediction.objects.create(
        cell_image=cell_image,
        model_version=model_version,
        job=job,
        label=label,
        confidence=confidence,
        **{
            "inference_ms": 1.0,
            "domain_score": 0.5,
            "in_domain": True,
            **probabilities_for(label, confidence),
            **fields,
        },
    )


def slide_domain_assessment_make(
    slide: Slide, job: InferenceJob, verdict: str = DomainVerdict.IN_DOMAIN, **fields
) -> SlideDomainAssessment:
    """The slide's domain verdict for the job's model version, as a finished job leaves it."""
    defaults = {"statistic": 0.5, "threshold": job.model_version.domain_slide_threshold, "cell_count": 25}
    return SlideDomainAssessment.objects.create(
        slide=slide,
        model_version=job.model_version,
        job=job,
        verdict=verdict,
        **{**defaults, "few_cells": fields.get("cell_count", 25) < 10, **fields},
    )


def review_make(prediction: Prediction, reviewer: User, label: str | None = None, reason: str = "") -> Review:
    """A pathologist's review through the service (audited, slide moved to review); confirms the
    predicted label unless ``label`` says otherwise."""
    return prediction_review(
        actor=reviewer, prediction=prediction, label=label or prediction.label, reason=reason
    )


def reviews_make(predictions: Iterable[Prediction], reviewer: User) -> list[Review]:
    """Each prediction confirmed as predicted, one by one."""
    return [review_make(prediction, reviewer) for prediction in predictions]


def reauth_request(address: str = "192.0.2.10") -> HttpRequest:
    """The request a sign-off or amendment re-authenticates with (the lockout keys on its address)."""
    return RequestFactory().post("/review/sign/", REMOTE_ADDR=address)
