import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Patient, Slide, SlideStatus
from cases.services import cell_images_upload
from tests.factories import distinct_png, uploaded, zip_bytes

pytestmark = pytest.mark.django_db


def test_patient_list_searches_by_mrn_and_name(lab_client, patient, other_patient):
    response = lab_client.get(reverse("cases:patient_list"), {"q": "roe"})
    assert list(response.context["page"]) == [other_patient]
    response = lab_client.get(reverse("cases:patient_list"), {"q": "MRN-0001"})
    assert list(response.context["page"]) == [patient]


def test_patient_list_query_count_does_not_grow_with_patients(
    lab_client, lab_staff, django_assert_max_num_queries
):
    for index in range(30):
        Patient.objects.create(
            mrn=f"Q{index}",
            family_name="F",
            given_name="G",
            date_of_birth=datetime.date(1990, 1, 1),
            sex="male",
            created_by=lab_staff,
        )
    with django_assert_max_num_queries(8):
        lab_client.get(reverse("cases:patient_list"))


def test_creating_a_patient_through_the_form_audits_it(lab_client, lab_staff):
    response = lab_client.post(
        reverse("cases:patient_create"),
        {
            "mrn": "N-1",
            "family_name": "New",
            "given_name": "Pat",
            "date_of_birth": "1999-12-31",
            "sex": "other",
        },
    )
    patient = Patient.objects.get(mrn="N-1")
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:patient_detail", args=[patient.pk])
    assert AuditEvent.objects.exclude(action=AuditAction.LOGIN).get().action == AuditAction.PATIENT_CREATED


def test_a_duplicate_mrn_is_shown_on_the_form(lab_client, patient):
    response = lab_client.post(
        reverse("cases:patient_create"),
        {
            "mrn": patient.mrn,
            "family_name": "X",
            "given_name": "Y",
            "date_of_birth": "1999-12-31",
            "sex": "other",
        },
    )
    assert response.status_code == 200
    assert "mrn" in response.context["form"].errors
    assert Patient.objects.count() == 1


def test_editing_a_patient_records_before_and_after(lab_client, patient):
    lab_client.post(
        reverse("cases:patient_update", args=[patient.pk]),
        {
            "mrn": patient.mrn,
            "family_name": "Doe-Smith",
            "given_name": "Jane",
            "date_of_birth": "1980-05-17",
            "sex": "female",
        },
    )
    event = AuditEvent.objects.exclude(action=AuditAction.LOGIN).get()
    assert (event.before, event.after) == ({"family_name": "Doe"}, {"family_name": "Doe-Smith"})


def test_creating_a_slide_for_a_patient(lab_client, patient):
    response = lab_client.post(
        reverse("cases:slide_create", args=[patient.pk]),
        {"accession_number": "ACC-1", "collected_at": "2026-11-20T08:30", "stain": "giemsa", "notes": ""},
    )
    slide = Slide.objects.get()
    assert response["Location"] == reverse("cases:slide_detail", args=[slide.pk])
    assert (slide.patient, slide.status) == (patient, SlideStatus.DRAFT)


def test_editing_a_signed_slide_shows_an_error_and_changes_nothing(lab_client, slide):
    Slide.objects.filter(pk=slide.pk).update(status=SlideStatus.SIGNED)
    response = lab_client.post(
        reverse("cases:slide_update", args=[slide.pk]),
        {"accession_number": "CHANGED", "collected_at": "2026-11-20T08:30", "stain": "giemsa", "notes": ""},
    )
    assert response.status_code == 409  # shown read-only, with the reason
    assert "is signed, so it is read-only" in response.context["locked_reason"]
    assert Slide.objects.get().accession_number == slide.accession_number


def test_slide_list_filters_by_status(lab_client, slide, patient, lab_staff):
    other = Slide.objects.create(
        patient=patient,
        accession_number="S-2",
        collected_at=slide.collected_at,
        created_by=lab_staff,
        status=SlideStatus.SIGNED,
    )
    response = lab_client.get(reverse("cases:slide_list"), {"status": "signed"})
    assert list(response.context["page"]) == [other]


def test_upload_page_accepts_many_files_and_a_zip_and_lists_each(lab_client, slide, media_root):
    files = [
        uploaded("one.png", distinct_png(1)),
        uploaded("two.png", distinct_png(2)),
        uploaded("batch.zip", zip_bytes({"three.png": distinct_png(3), "notes.txt": b"hello"})),
    ]
    response = lab_client.post(reverse("cases:cell_image_upload", args=[slide.pk]), {"files": files})
    assert response.status_code == 200
    outcomes = response.context["outcomes"]
    assert [(o.filename, o.accepted) for o in outcomes] == [
        ("one.png", True),
        ("two.png", True),
        ("batch.zip › three.png", True),
        ("batch.zip › notes.txt", False),
    ]
    assert CellImage.objects.filter(slide=slide).count() == 3
    assert b"not a PNG, JPEG, TIFF or BMP image" in response.content
    assert len([path for path in media_root.rglob("*") if path.is_file()]) == 3


def test_upload_without_files_is_a_400(lab_client, slide):
    response = lab_client.post(reverse("cases:cell_image_upload", args=[slide.pk]), {})
    assert response.status_code == 400


def test_upload_to_a_signed_slide_is_refused(lab_client, slide):
    Slide.objects.filter(pk=slide.pk).update(status=SlideStatus.SIGNED)
    response = lab_client.post(
        reverse("cases:cell_image_upload", args=[slide.pk]), {"files": [uploaded("a.png", distinct_png(1))]}
    )
    assert response.status_code == 409
    assert CellImage.objects.count() == 0


def test_cell_image_file_is_streamed_with_its_type_and_nosniff(lab_client, slide):
    lab_client.post(
        reverse("cases:cell_image_upload", args=[slide.pk]), {"files": [uploaded("a.png", distinct_png(5))]}
    )
    cell_image = CellImage.objects.get()
    response = lab_client.get(reverse("cases:cell_image_file", args=[cell_image.pk]))
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == distinct_png(5)


@pytest.mark.parametrize("url_name", ["cases:patient_detail", "cases:patient_update", "cases:slide_create"])
def test_absent_patients_are_404(lab_client, url_name):
    kwargs = {"patient_pk": 999999} if url_name == "cases:slide_create" else {"pk": 999999}
    assert lab_client.get(reverse(url_name, kwargs=kwargs)).status_code == 404


@pytest.mark.parametrize(
    ("url_name", "key"),
    [
        ("cases:slide_detail", "pk"),
        ("cases:slide_update", "pk"),
        ("cases:cell_image_upload", "slide_pk"),
        ("cases:cell_image_file", "pk"),
    ],
)
def test_absent_slides_and_images_are_404(lab_client, url_name, key):
    assert lab_client.get(reverse(url_name, kwargs={key: 999999})).status_code == 404


def _query_count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def test_slide_pages_keep_a_constant_number_of_queries(lab_client, lab_staff, slide):
    urls = [
        reverse("cases:slide_list"),
        reverse("cases:slide_detail", args=[slide.pk]),
        reverse("cases:patient_detail", args=[slide.patient.pk]),
    ]

    def add(first: int, count: int) -> None:
        for index in range(first, first + count):
            Slide.objects.create(
                patient=slide.patient,
                accession_number=f"B-{index}",
                collected_at=slide.collected_at,
                created_by=lab_staff,
            )
        files = [uploaded(f"{i}.png", distinct_png(i)) for i in range(first, first + count)]
        cell_images_upload(actor=lab_staff, slide=slide, files=files)

    add(0, 2)
    few = [_query_count(lab_client, url) for url in urls]
    add(2, 20)
    assert [_query_count(lab_client, url) for url in urls] == few
