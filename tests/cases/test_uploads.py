import io
import re

import pytest
from django.db import IntegrityError
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Slide
from cases.services import DuplicateCellImage, cell_image_create, cell_images_upload
from cases.uploads import UploadRejected, filename_sanitise, image_validate, upload_expand
from tests.cases.upload_corpus import TEST_LIMITS, bad_upload_corpus
from tests.factories import distinct_png, image_bytes, uploaded, zip_bytes

CORPUS = bad_upload_corpus()


@pytest.fixture(autouse=True)
def _test_limits(settings):
    settings.HEMATOVISION_UPLOAD_MAX_FILE_BYTES = TEST_LIMITS.max_file_bytes
    settings.HEMATOVISION_UPLOAD_MAX_PIXELS = TEST_LIMITS.max_pixels
    settings.HEMATOVISION_ARCHIVE_MAX_MEMBERS = TEST_LIMITS.archive_max_members
    settings.HEMATOVISION_ARCHIVE_MAX_TOTAL_BYTES = TEST_LIMITS.archive_max_total_bytes
    settings.HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


def test_the_corpus_has_at_least_fifty_bad_files():
    assert len(CORPUS) >= 50


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "data", "what"), CORPUS, ids=[entry[2] for entry in CORPUS])
def test_each_bad_file_is_refused_with_a_reason_and_leaves_nothing(
    lab_client, slide, media_root, name, data, what
):
    response = lab_client.post(
        reverse("api:slide-cell-images", args=[slide.pk]),
        {"files": [uploaded(name, data)]},
        format="multipart",
    )
    assert response.status_code == 400, what
    body = response.json()
    assert body["accepted"] == 0
    assert body["results"] and all(result["reason"] for result in body["results"])
    assert CellImage.objects.count() == 0
    assert not AuditEvent.objects.filter(action=AuditAction.CELL_IMAGE_UPLOADED).exists()
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_the_whole_corpus_at_once_through_the_page_is_refused_per_file(lab_client, slide, media_root):
    files = [uploaded(name, data) for name, data, _ in CORPUS]
    response = lab_client.post(reverse("cases:cell_image_upload", args=[slide.pk]), {"files": files})
    assert response.status_code == 400
    outcomes = response.context["outcomes"]
    assert len(outcomes) >= len(CORPUS)
    assert not any(outcome.accepted for outcome in outcomes)
    assert all(outcome.reason for outcome in outcomes)
    assert CellImage.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_good_files_in_a_bad_batch_are_kept_and_listed(lab_staff, slide, media_root):
    files = [
        uploaded("good-1.png", distinct_png(1)),
        uploaded("bad.png", b"nope"),
        uploaded("good-2.jpg", image_bytes("JPEG")),
    ]
    outcomes = cell_images_upload(actor=lab_staff, slide=slide, files=files)
    assert [(o.filename, o.accepted) for o in outcomes] == [
        ("good-1.png", True),
        ("bad.png", False),
        ("good-2.jpg", True),
    ]
    assert CellImage.objects.filter(slide=slide).count() == 2
    assert len(stored_files(media_root)) == 2
    assert AuditEvent.objects.filter(action=AuditAction.CELL_IMAGE_UPLOADED).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("image_format", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("TIFF", "tif"), ("BMP", "bmp")]
)
def test_each_allowed_format_is_stored_under_a_generated_name(lab_staff, slide, image_format, extension):
    data = image_bytes(image_format, size=(31, 17))
    (outcome,) = cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("Cell (1).dat", data)])
    cell_image = CellImage.objects.get()
    assert outcome.cell_image == cell_image
    assert (cell_image.image_format, cell_image.width, cell_image.height) == (image_format, 31, 17)
    assert re.fullmatch(rf"cell-images/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.{extension}", cell_image.file.name)
    assert cell_image.original_filename == "Cell (1).dat"
    with cell_image.file.open("rb") as stored:
        assert stored.read() == data


@pytest.mark.django_db
def test_a_hostile_name_on_a_good_image_is_kept_only_sanitised(lab_staff, slide):
    cell_images_upload(
        actor=lab_staff, slide=slide, files=[uploaded("..\\..\\evil\u202e\x07name.png", distinct_png(3))]
    )
    cell_image = CellImage.objects.get()
    assert cell_image.original_filename == "evilname.png"
    assert ".." not in cell_image.file.name


@pytest.mark.django_db
def test_the_same_image_twice_on_a_slide_is_refused_but_allowed_on_another(lab_staff, slide, patient):
    other_slide = Slide.objects.create(
        patient=patient, accession_number="S-X", collected_at=slide.collected_at, created_by=lab_staff
    )
    data = distinct_png(11)
    first, second = cell_images_upload(
        actor=lab_staff, slide=slide, files=[uploaded("a.png", data), uploaded("copy.png", data)]
    )
    (elsewhere,) = cell_images_upload(actor=lab_staff, slide=other_slide, files=[uploaded("a.png", data)])
    assert (first.accepted, second.accepted, elsewhere.accepted) == (True, False, True)
    assert second.reason == "the same image is already on this slide"


@pytest.mark.django_db
def test_a_database_failure_after_storing_removes_the_file(lab_staff, slide, media_root, monkeypatch):
    image = image_validate(data=distinct_png(4), original_filename="a.png", limits=TEST_LIMITS)

    def lose_the_race(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(CellImage, "save", lose_the_race)
    with pytest.raises(DuplicateCellImage):
        cell_image_create(actor=lab_staff, slide=slide, image=image)
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_an_over_large_request_is_refused_before_it_is_read(lab_client, slide, settings):
    settings.HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES = 2_000
    files = [uploaded(f"{index}.png", distinct_png(index, size=(60, 60))) for index in range(20)]
    response = lab_client.post(reverse("cases:cell_image_upload", args=[slide.pk]), {"files": files})
    assert response.status_code == 413
    assert b"larger than" in response.content
    api_response = lab_client.post(reverse("api:slide-cell-images", args=[slide.pk]), {"files": files})
    assert api_response.status_code == 413
    assert CellImage.objects.count() == 0


@pytest.mark.django_db
def test_too_many_files_in_one_request_is_a_400(lab_client, slide, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [uploaded(f"{index}.png", distinct_png(index)) for index in range(5)]
    response = lab_client.post(reverse("cases:cell_image_upload", args=[slide.pk]), {"files": files})
    assert response.status_code == 400
    assert CellImage.objects.count() == 0


def test_archive_members_are_expanded_in_order():
    data = zip_bytes({"dir/a.png": distinct_png(1), "b.png": distinct_png(2)})
    candidates = list(
        upload_expand(name="set.zip", stream=io.BytesIO(data), size=len(data), limits=TEST_LIMITS)
    )
    assert [(c.display_name, c.original_filename, c.rejection) for c in candidates] == [
        ("set.zip › a.png", "a.png", ""),
        ("set.zip › b.png", "b.png", ""),
    ]


def test_image_validate_reports_metadata_and_sha256():
    import hashlib

    data = image_bytes("PNG", size=(40, 30))
    image = image_validate(data=data, original_filename="x.png", limits=TEST_LIMITS)
    assert (image.image_format, image.width, image.height, image.extension) == ("PNG", 40, 30, "png")
    assert image.sha256 == hashlib.sha256(data).hexdigest()


def test_the_pixel_limit_is_an_error_not_a_warning():
    limits = TEST_LIMITS.__class__(**{**TEST_LIMITS.__dict__, "max_pixels": 100})
    with pytest.raises(UploadRejected, match="pixels"):
        image_validate(data=image_bytes("PNG", size=(11, 10)), original_filename="x.png", limits=limits)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("cell.png", "cell.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\cell.png", "cell.png"),
        ("a\x00b\x1b[31m.png", "ab[31m.png"),
        ("\u202egnp.exe", "gnp.exe"),
        (".hidden.png", "hidden.png"),
        ("", "unnamed"),
        ("x" * 300 + ".png", "x" * 200),
    ],
)
def test_filename_sanitise(raw, clean):
    assert filename_sanitise(raw) == clean


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("x.jpg.php", "extension '.php' of a script"),
        ("x.php.jpg", "extension '.php' of a script"),
        ("cell.PNG.Html", "extension '.html' of a script"),
        ("ｘ．ｐｈｐ.png", "extension '.php' of a script"),
        ("x.php%00.jpg", "NUL"),
        ("x%00.png", "NUL"),
        ("cell.png\x00.php", "NUL"),
    ],
)
def test_a_valid_image_under_a_hostile_name_is_refused(lab_staff, slide, name, reason):
    """Issue 11: ``x.jpg.php`` and ``x.php%00.jpg`` carrying a real PNG were accepted."""
    [outcome] = cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded(name, distinct_png(7))])
    assert not outcome.accepted and reason in outcome.reason
    zipped = zip_bytes({name.replace("\x00", ""): distinct_png(8)})
    [member] = cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("set.zip", zipped)])
    assert not member.accepted
    assert CellImage.objects.count() == 0


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ((1, 1), "image is 1×1 px; each side must be at least 16 px"),
        ((15, 40), "image is 15×40 px; each side must be at least 16 px"),
        ((10000, 1), "image is 10000×1 px; each side must be at least 16 px"),
        ((2000, 16), "image is 2000×16 px; its aspect ratio 125:1 is beyond the limit of 4:1"),
        ((16, 80), "aspect ratio 5:1 is beyond the limit of 4:1"),
    ],
)
def test_degenerate_images_are_refused_naming_the_limit(size, reason):
    """Issue 11: a 1×1 black PNG was accepted and classified (neutrophil 32%)."""
    with pytest.raises(UploadRejected, match=re.escape(reason)):
        image_validate(
            data=image_bytes("PNG", size=size, color=(0, 0, 0)), original_filename="x.png", limits=TEST_LIMITS
        )


def test_images_at_the_limits_pass():
    for size in ((16, 16), (64, 16), (16, 64)):
        assert image_validate(
            data=image_bytes("PNG", size=size), original_filename="x.png", limits=TEST_LIMITS
        )


@pytest.mark.django_db
def test_one_request_decodes_a_bounded_number_of_pixels_and_answers_every_file(lab_staff, slide, settings):
    settings.HEMATOVISION_UPLOAD_REQUEST_MAX_PIXELS = 3 * 40 * 30
    files = [uploaded(f"{index}.png", image_bytes("PNG", (40, 30), (index, 9, 9))) for index in range(3)]
    files.append(
        uploaded("set.zip", zip_bytes({"a.png": distinct_png(1, (40, 30)), "b.png": distinct_png(2)}))
    )

    outcomes = cell_images_upload(actor=lab_staff, slide=slide, files=files)

    assert [outcome.accepted for outcome in outcomes] == [True, True, True, False, False]
    assert {outcome.reason for outcome in outcomes[3:]} == {
        "not checked: one upload decodes at most 3,600 pixels and the images before this one used them; "
        "send the rest in another upload"
    }
    assert [outcome.filename for outcome in outcomes[3:]] == ["set.zip › a.png", "set.zip › b.png"]
    assert CellImage.objects.count() == 3


@pytest.mark.django_db
def test_one_request_checks_a_bounded_number_of_files(lab_staff, slide, settings):
    settings.HEMATOVISION_UPLOAD_REQUEST_MAX_FILES = 2
    files = [uploaded(f"{index}.png", distinct_png(index)) for index in range(3)]
    outcomes = cell_images_upload(actor=lab_staff, slide=slide, files=files)
    assert [outcome.accepted for outcome in outcomes] == [True, True, False]
    assert outcomes[2].reason.startswith("not checked: one upload checks at most 2 files")
