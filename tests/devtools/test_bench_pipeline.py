import re
from io import StringIO

import pytest
from django.core.management import call_command

from classifier.models import InferenceJob, Prediction

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_benchmark_times_a_slide_through_its_own_worker(serving_model, worker_queue):
    output = StringIO()

    call_command("bench_pipeline", "--cells", "6", stdout=output)

    report = output.getvalue()
    assert re.search(r"6 of 6 predictions stored \(0 failed\)", report)
    assert re.search(r"Submit → all predictions stored: \d+\.\d\d s, \d+\.\d cells/s", report)
    job = InferenceJob.objects.get()
    assert job.status == "succeeded"
    assert Prediction.objects.filter(job=job).count() == 6


def test_the_benchmark_times_whole_bccd_fields_per_field(serving_model, worker_queue):
    output = StringIO()

    call_command("bench_pipeline", "--fields", "3", stdout=output)

    report = output.getvalue()
    job = InferenceJob.objects.get()
    assert job.status == "succeeded" and job.field_images.count() == 3
    assert job.total >= 3 and Prediction.objects.filter(job=job).count() == job.total
    assert re.search(rf"3 fields, {job.total} white cells located: \d+\.\d\d\d s per field", report)
