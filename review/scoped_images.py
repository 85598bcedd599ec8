"""Cell images served through a proficiency set or a consult, never at the cell image's own URL:
re-encoded as a PNG of the pixels alone, so no file name, EXIF or other metadata (a camera serial,
a scanner's patient label) travels with them."""

import io

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpResponse, JsonResponse
from PIL import Image

from cases.models import CellImage
from classifier.models import GradCam, GradCamStatus, Prediction


def cell_image_pixels_response(cell_image: CellImage) -> HttpResponse:
    with default_storage.open(cell_image.file.name, "rb") as handle, Image.open(handle) as image:
        pixels = image.convert("RGB")
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    response = HttpResponse(buffer.getvalue(), content_type="image/png")
    response["Cache-Control"] = f"private, max-age={settings.HEMATOVISION_CELL_IMAGE_CACHE_SECONDS}"
    return response


def gradcam_png_or_status(prediction: Prediction) -> HttpResponse:
    """The stored Grad-CAM overlay (PNG), or 202 with its status while a worker makes it."""
    gradcam = GradCam.objects.filter(prediction=prediction).first()
    if gradcam is None or gradcam.status != GradCamStatus.SUCCEEDED:
        return JsonResponse(
            {"status": gradcam.status if gradcam else "absent", "error": gradcam.error if gradcam else ""},
            status=202,
        )
    with default_storage.open(gradcam.image.name, "rb") as handle:
        response = HttpResponse(handle.read(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
