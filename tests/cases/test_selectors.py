import pytest

from cases.models import Slide, SlideStatus
from cases.selectors import (
    cell_image_list,
    cell_image_visible_queryset,
    patient_list,
    patient_visible_queryset,
    slide_list,
    slide_visible_queryset,
)
from cases.services import cell_images_upload
from tests.factories import distinct_png, uploaded

pytestmark = pytest.mark.django_db


def test_clinical_roles_see_records_and_others_none(lab_staff, pathologist, administrator, outsider, slide):
    cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("a.png", distinct_png(1))])
    for user in (lab_staff, pathologist):
        assert patient_visible_queryset(user).count() == 1
        assert slide_visible_queryset(user).count() == 1
        assert cell_image_visible_queryset(user).count() == 1
    for user in (administrator, outsider):
        assert patient_visible_queryset(user).count() == 0
        assert slide_visible_queryset(user).count() == 0
        assert cell_image_visible_queryset(user).count() == 0


def test_patient_list_matches_every_search_word(lab_staff, patient, other_patient):
    assert list(patient_list(user=lab_staff, search="jane doe")) == [patient]
    assert list(patient_list(user=lab_staff, search="jane roe")) == []
    assert [p.slide_count for p in patient_list(user=lab_staff)] == [0, 0]


def test_slide_list_filters_and_counts_images(lab_staff, slide, patient, other_patient):
    other = Slide.objects.create(
        patient=other_patient, accession_number="S-9", collected_at=slide.collected_at, created_by=lab_staff
    )
    Slide.objects.filter(pk=other.pk).update(status=SlideStatus.IN_REVIEW)
    cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("a.png", distinct_png(1))])
    assert list(slide_list(user=lab_staff, status=SlideStatus.IN_REVIEW)) == [other]
    assert list(slide_list(user=lab_staff, patient=patient)) == [slide]
    assert list(slide_list(user=lab_staff, search="MRN-0002")) == [other]
    assert {s.accession_number: s.cell_image_count for s in slide_list(user=lab_staff)} == {
        "S-0001": 1,
        "S-9": 0,
    }


def test_cell_image_list_is_limited_to_the_slide(lab_staff, slide, patient):
    other = Slide.objects.create(
        patient=patient, accession_number="S-2", collected_at=slide.collected_at, created_by=lab_staff
    )
    cell_images_upload(actor=lab_staff, slide=slide, files=[uploaded("a.png", distinct_png(1))])
    cell_images_upload(actor=lab_staff, slide=other, files=[uploaded("b.png", distinct_png(2))])
    assert [c.original_filename for c in cell_image_list(user=lab_staff, slide=slide)] == ["a.png"]
