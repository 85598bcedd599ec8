"""Issue 11, finding 2, as the attacker did it: a 253 KB zip of 300 PNGs of 5000×4999 px (each
within the pixel limit) held a web worker past gunicorn's timeout (500 after 31 s, one image
kept, no outcome per file). With the production limits, the same upload is answered within a
few seconds, every member with its outcome, far inside the deliberate gunicorn timeout."""

import io
import runpy
import time
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from cases.models import CellImage
from tests.proof.security.conftest import browser_login, csrf_token_in

ROOT = Path(__file__).resolve().parents[3]
MEMBERS = 300


def _large_png_zip() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (5000, 4999), (200, 120, 160)).save(image, format="PNG", compress_level=9)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for index in range(MEMBERS):
            zipped.writestr(f"cell-{index:03}.png", image.getvalue())
    return archive.getvalue()


@pytest.mark.django_db
def test_a_zip_of_300_images_of_25_megapixels_is_answered_in_seconds_file_by_file(lab_staff, slide, capsys):
    data = _large_png_zip()
    client = browser_login("lab")
    url = reverse("cases:cell_image_upload", args=[slide.pk])
    token = csrf_token_in(client.get(url).content)
    upload = io.BytesIO(data)
    upload.name = "cells.zip"

    started = time.perf_counter()
    # Cell images, as the kind says (by their size alone they would be taken for whole fields).
    response = client.post(url, {"files": [upload], "kind": "cell", "csrfmiddlewaretoken": token})
    seconds = time.perf_counter() - started

    assert response.status_code == 200
    outcomes = response.context["outcomes"]
    assert len(outcomes) == MEMBERS
    reasons = [outcome.reason for outcome in outcomes if not outcome.accepted]
    assert sum(outcome.accepted for outcome in outcomes) == 1  # the other members are the same image
    assert reasons.count("the same image is already on this slide") == 9
    assert sum(reason.startswith("not checked: one upload decodes at most") for reason in reasons) == 290
    assert b"not checked: one upload decodes at most 250,000,000 pixels" in response.content
    assert CellImage.objects.count() == 1
    gunicorn = runpy.run_path(str(ROOT / "scripts" / "gunicorn.conf.py"))
    with capsys.disabled():
        print(f"\n[upload budget] {len(data) / 1024:.0f} KB zip, {MEMBERS} × 5000×4999 px: {seconds:.2f} s")
    assert seconds * 3 < gunicorn["timeout"] == 60
