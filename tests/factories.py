"""Helpers that build test data: patients and slides, image bytes generated in memory, and
uploaded-file objects."""

import datetime
import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from django.test import RequestFactory
from django.utils import timezone
from PIL import Image

from accounts.models import User
from cases.models import Patient, Sex, Slide, SlideStatus, Stain


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


def reauth_request(address: str = "192.0.2.10") -> HttpRequest:
    """The request a sign-off or amendment re-authenticates with (the lockout keys on its address)."""
    return RequestFactory().post("/review/sign/", REMOTE_ADDR=address)
