"""Helpers that build test data: image bytes generated in memory, and uploaded-file objects."""

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


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
