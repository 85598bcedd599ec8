import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Patient, Slide
from tests.conftest import PASSWORD
from tests.factories import distinct_png, uploaded, zip_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(lab_staff) -> APIClient:
    client = APIClient()
    token = client.post(
        reverse("api:token"), {"username": "lab", "password": PASSWORD}, format="json"
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_is_issued_for_good_credentials_and_audited(lab_staff, api):
    assert api.get(reverse("api:patient-list")).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.API_TOKEN_ISSUED, actor=lab_staff).count() == 1


def test_no_token_for_a_wrong_password(lab_staff):
    response = APIClient().post(reverse("api:token"), {"username": "lab", "password": "nope"}, format="json")
    assert response.status_code == 403
    assert "token" not in response.json()


def test_a_bad_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get(reverse("api:patient-list")).status_code == 401


def test_create_patient_and_slide_through_the_api(api, lab_staff):
    patient = api.post(
        reverse("api:patient-list"),
        {
            "mrn": "API-1",
            "family_name": "Api",
            "given_name": "Pat",
            "date_of_birth": "1970-02-03",
            "sex": "male",
        },
        format="json",
    )
    assert patient.status_code == 201
    slide = api.post(
        reverse("api:slide-list"),
        {
            "accession_number": "API-S1",
            "patient": patient.json()["id"],
            "collected_at": "2026-11-01T09:00:00Z",
            "stain": "wright",
        },
        format="json",
    )
    assert slide.status_code == 201
    assert slide.json()["status"] == "draft"
    assert Slide.objects.get().created_by == lab_staff
    assert list(
        AuditEvent.objects.exclude(action=AuditAction.API_TOKEN_ISSUED).values_list("action", flat=True)
    ) == [
        AuditAction.SLIDE_CREATED,
        AuditAction.PATIENT_CREATED,
    ]


def test_a_duplicate_mrn_is_a_400_not_a_500(api, patient):
    response = api.post(
        reverse("api:patient-list"),
        {
            "mrn": patient.mrn,
            "family_name": "X",
            "given_name": "Y",
            "date_of_birth": "1970-02-03",
            "sex": "male",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "mrn" in response.json()


def test_slide_creation_refuses_an_absent_patient(api):
    response = api.post(
        reverse("api:slide-list"),
        {
            "accession_number": "X",
            "patient": 999999,
            "collected_at": "2026-11-01T09:00:00Z",
            "stain": "wright",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "patient" in response.json()


def test_patch_updates_and_audits_only_changes(api, patient):
    response = api.patch(
        reverse("api:patient-detail", args=[patient.pk]), {"given_name": "Janet"}, format="json"
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.PATIENT_UPDATED)
    assert (event.before, event.after) == ({"given_name": "Jane"}, {"given_name": "Janet"})


def test_status_cannot_be_written_through_the_slide_api(api, slide):
    api.patch(reverse("api:slide-detail", args=[slide.pk]), {"status": "signed", "notes": "n"}, format="json")
    slide.refresh_from_db()
    assert (slide.status, slide.notes) == ("draft", "n")


def test_a_slide_cannot_be_moved_to_another_patient(api, slide, other_patient):
    """Issue 11: the PATCH answered 200 and silently ignored ``patient``; now it is refused."""
    response = api.patch(
        reverse("api:slide-detail", args=[slide.pk]),
        {"patient": other_patient.pk, "notes": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert "cannot be changed" in response.json()["patient"][0]
    assert Slide.objects.get(pk=slide.pk).patient_id == slide.patient_id
    assert Slide.objects.get(pk=slide.pk).notes == ""


def test_a_slide_patch_repeating_its_own_patient_is_accepted(api, slide):
    response = api.patch(
        reverse("api:slide-detail", args=[slide.pk]),
        {"patient": slide.patient_id, "notes": "y"},
        format="json",
    )
    assert response.status_code == 200 and Slide.objects.get(pk=slide.pk).notes == "y"


def test_the_schema_marks_a_slide_updates_patient_read_only(api):
    schema = api.get(reverse("api:schema"), {"format": "json"}).json()
    patch = schema["components"]["schemas"]["PatchedSlideUpdateRequest"]["properties"]
    assert "patient" not in patch


def test_lists_are_paginated_and_filtered(api, lab_staff, patient):
    for index in range(55):
        Slide.objects.create(
            patient=patient,
            accession_number=f"P-{index:02}",
            collected_at="2026-01-01T00:00Z",
            created_by=lab_staff,
            status="signed" if index < 5 else "draft",
        )
    page = api.get(reverse("api:slide-list")).json()
    assert (page["count"], len(page["results"])) == (55, 50)
    assert page["next"]
    signed = api.get(reverse("api:slide-list"), {"status": "signed"}).json()
    assert signed["count"] == 5
    assert api.get(reverse("api:patient-list"), {"search": "doe"}).json()["count"] == 1


def test_slide_list_queries_stay_constant(api, lab_staff, patient, django_assert_max_num_queries):
    for index in range(40):
        Slide.objects.create(
            patient=patient,
            accession_number=f"Q-{index}",
            collected_at="2026-01-01T00:00Z",
            created_by=lab_staff,
        )
    with django_assert_max_num_queries(6):
        api.get(reverse("api:slide-list"))


def test_multi_file_upload_reports_each_file(api, slide):
    files = [
        uploaded("a.png", distinct_png(1)),
        uploaded("b.zip", zip_bytes({"c.png": distinct_png(2), "bad.png": b"x"})),
    ]
    response = api.post(
        reverse("api:slide-cell-images", args=[slide.pk]), {"files": files}, format="multipart"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [result["accepted"] for result in body["results"]] == [True, True, False]
    assert body["results"][0]["cell_image"]["sha256"] == CellImage.objects.order_by("id").first().sha256
    listing = api.get(reverse("api:slide-cell-images", args=[slide.pk])).json()
    assert listing["count"] == 2


def test_upload_without_files_field_is_a_400(api, slide):
    assert (
        api.post(reverse("api:slide-cell-images", args=[slide.pk]), {}, format="multipart").status_code == 400
    )


def test_cell_image_file_download_through_the_api(api, slide):
    api.post(
        reverse("api:slide-cell-images", args=[slide.pk]),
        {"files": [uploaded("a.png", distinct_png(8))]},
        format="multipart",
    )
    cell_image = CellImage.objects.get()
    response = api.get(reverse("api:cell-image-file", args=[cell_image.pk]))
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == distinct_png(8)


@pytest.mark.parametrize(
    "url_name",
    [
        "api:patient-detail",
        "api:slide-detail",
        "api:slide-cell-images",
        "api:cell-image-detail",
        "api:cell-image-file",
    ],
)
def test_absent_objects_are_404(api, url_name):
    assert api.get(reverse(url_name, args=[999999])).status_code == 404


def test_admins_get_no_clinical_data_even_when_listing(administrator):
    client = APIClient()
    client.force_authenticate(administrator)
    assert client.get(reverse("api:patient-list")).status_code == 403


def test_schema_describes_every_endpoint(api):
    response = api.get(reverse("api:schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/patients/",
        "/api/slides/{id}/cell-images/",
        "/api/audit-events/",
        "/api/users/",
        "/api/auth/token/",
    ]:
        assert path in paths


def test_swagger_ui_is_served_from_local_static_files(api):
    html = api.get(reverse("api:docs")).content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_patients_count_unchanged_by_pathologist_writes(pathologist):
    client = APIClient()
    client.force_authenticate(pathologist)
    client.post(reverse("api:patient-list"), {"mrn": "Z"}, format="json")
    assert Patient.objects.count() == 0
