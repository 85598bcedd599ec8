"""seed_verified_lab makes verified cells the lab-day way: uploaded, classified by the active
(tiny) model, reviewed to the folder's label (a correction where the model was wrong), signed."""

from io import StringIO

import pytest
from django.core.management import call_command

from cases.models import SlideStatus
from classifier.models import CellClass, Prediction
from review.adaptation import LabCellSelection, lab_verified_cells
from review.models import Review, ReviewDecision, SlideSignature
from tests.adaptation_lab import class_cell_bytes
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_it_seeds_signed_slides_whose_final_labels_are_the_folders(
    tmp_path, tiny_model_version, lab_staff, pathologist
):
    for label in CellClass.values:
        (tmp_path / label.lower()).mkdir()
        for index in range(3):
            (tmp_path / label.lower() / f"{index}.png").write_bytes(class_cell_bytes(label, index))
    out = StringIO()

    call_command(
        "seed_verified_lab",
        "--data", str(tmp_path), "--slides", "2", "--lab-staff", "lab", "--pathologist", "patho",
        "--password", PASSWORD, "--tag", "T",
        stdout=out,
    )  # fmt: skip

    assert out.getvalue().count("cells verified and signed") == 2
    assert SlideSignature.objects.count() == 2 and Prediction.objects.count() == 12
    assert set(SlideSignature.objects.values_list("slide__status", flat=True)) == {SlideStatus.SIGNED}
    cells = lab_verified_cells(selection=LabCellSelection())
    labels = sorted(label for _, label in cells)
    assert labels == sorted(CellClass.values * 3)
    for review in Review.objects.select_related("prediction"):
        corrected = review.prediction.label != review.label
        assert review.decision == (ReviewDecision.CORRECTED if corrected else ReviewDecision.CONFIRMED)
