"""The image formats the project accepts, stores and serves: one table for uploads, file names
and responses."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    extension: str  # of the generated storage name
    content_type: str


# By Pillow format name.
IMAGE_FORMATS: dict[str, ImageFormat] = {
    "PNG": ImageFormat("png", "image/png"),
    "JPEG": ImageFormat("jpg", "image/jpeg"),
    "TIFF": ImageFormat("tif", "image/tiff"),
    "BMP": ImageFormat("bmp", "image/bmp"),
}


def content_type_for_name(name: str) -> str:
    """The content type of a stored file, from the extension its generated name ends with."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for image_format in IMAGE_FORMATS.values():
        if image_format.extension == extension:
            return image_format.content_type
    return "application/octet-stream"
