"""Chaos: slides of real cells classified by a real worker while the worker is SIGKILLed, or while
Redis is SIGKILLed and started again empty. Nothing may be lost or duplicated, the queue must
drain, and after Redis is back the worker must consume again within 30 s.

`scripts/test.sh tests/proof/chaos` runs 40 cells per test (CI); the full run is
`HEMATOVISION_CHAOS_CELLS=200 scripts/test.sh tests/proof/chaos` (options: see conftest.py).
"""

import socket
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditAction, AuditEvent
from cases.models import CellImage, Slide
from classifier.models import InferenceJob, InferenceJobStatus, ModelVersion, Prediction, PredictionFailure
from classifier.services import slide_submit
from hematovision_site.celery import app as celery_app
from tests.proof.chaos.conftest import _broker_use

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DRAIN_SECONDS = 180
# The recovery bound: a functional requirement, not a speed figure.
CONSUMING_AGAIN_WITHIN_SECONDS = 30


def _wait_until(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> float:
    """Seconds it took for condition() to hold; fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"not reached within {seconds}s")


def _jobs_submit(actor: User, slides: list[Slide]) -> list[int]:
    return [slide_submit(actor=actor, slide=slide).pk for slide in slides]


def _job_states(job_ids: list[int]) -> dict[int, tuple[str, int, int, int]]:
    rows = InferenceJob.objects.filter(pk__in=job_ids).values_list(
        "pk", "status", "done", "total", "attempts"
    )
    return {pk: (status, done, total, attempts) for pk, status, done, total, attempts in rows}


def _caught_part_way(job_ids: list[int], cells_done_at_least: int) -> bool:
    """Enough of the whole batch done, and a job running with at least two of its batches to go."""
    states = _job_states(job_ids).values()
    part_way = any(s == InferenceJobStatus.RUNNING and 0 < d <= t - 10 for s, d, t, _ in states)
    return part_way and sum(d for _, d, _, _ in states) >= cells_done_at_least


def _all_finished(job_ids: list[int]) -> bool:
    return not InferenceJob.objects.filter(pk__in=job_ids, finished_at__isnull=True).exists()


def _broker_backlog(client: redis.Redis) -> int:
    """Messages still in the private Redis: every queue list plus the unacknowledged ones."""
    queued = sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")
    return queued + client.hlen("unacked")


def _lost_and_duplicated(slides: list[Slide], model_version: ModelVersion) -> tuple[int, int, int]:
    """(cells, cells without a prediction, predictions beyond one per cell)."""
    cells = CellImage.objects.filter(slide__in=slides).count()
    per_cell = Counter(
        Prediction.objects.filter(cell_image__slide__in=slides, model_version=model_version).values_list(
            "cell_image_id", flat=True
        )
    )
    return cells, cells - len(per_cell), sum(count - 1 for count in per_cell.values())


def _assert_every_job_succeeded_once(job_ids: list[int]) -> None:
    states = _job_states(job_ids)
    assert {status for status, _, _, _ in states.values()} == {InferenceJobStatus.SUCCEEDED}
    assert all(done == total for _, done, total, _ in states.values())
    assert not PredictionFailure.objects.filter(job_id__in=job_ids).exists()
    finished = Counter(
        AuditEvent.objects.filter(
            action=AuditAction.INFERENCE_JOB_FINISHED,
            object_type="classifier.inferencejob",
            object_id__in=[str(pk) for pk in job_ids],
        ).values_list("object_id", flat=True)
    )
    assert finished == Counter({str(pk): 1 for pk in job_ids})


def test_a_worker_killed_mid_batch_and_restarted_loses_and_duplicates_nothing_and_the_queue_drains(
    chaos_worker, chaos_slides, chaos_cell_count, lab_staff, serving_model, private_redis, chaos_report
):
    worker = chaos_worker()
    job_ids = _jobs_submit(lab_staff, chaos_slides)
    cells = sum(total for _, _, total, _ in _job_states(job_ids).values())
    _wait_until(lambda: _caught_part_way(job_ids, cells // 3), DRAIN_SECONDS, interval=0.005)

    worker.kill()
    killed_at = time.monotonic()
    at_kill = _job_states(job_ids)
    (killed_job,) = [pk for pk, (status, *_) in at_kill.items() if status == InferenceJobStatus.RUNNING]
    _, done_at_kill, total, _ = at_kill[killed_job]
    assert 0 < done_at_kill < total
    chaos_worker()
    _wait_until(lambda: _all_finished(job_ids), DRAIN_SECONDS)
    drained_seconds = time.monotonic() - killed_at
    _wait_until(lambda: _broker_backlog(private_redis.client()) == 0, DRAIN_SECONDS)

    cells, lost, duplicated = _lost_and_duplicated(chaos_slides, serving_model)
    assert (cells, lost, duplicated) == (chaos_cell_count, 0, 0)
    _assert_every_job_succeeded_once(job_ids)
    assert _job_states(job_ids)[killed_job][3] >= 2  # it was delivered again after the kill
    chaos_report(
        f"{cells} cells in {len(job_ids)} jobs, SIGKILL at {sum(d for _, d, _, _ in at_kill.values())} "
        f"done; lost {lost}, duplicated {duplicated}; SIGKILL → all jobs finished {drained_seconds:.1f} s "
        "(worker restart and the 3 s visibility timeout included)"
    )


def test_a_redis_restart_mid_batch_loses_and_duplicates_nothing_and_the_worker_consumes_again_within_30_s(
    chaos_worker,
    chaos_slides,
    chaos_cell_count,
    redis_down_seconds,
    lab_staff,
    serving_model,
    private_redis,
    chaos_report,
):
    worker = chaos_worker()
    job_ids = _jobs_submit(lab_staff, chaos_slides)
    cells = sum(total for _, _, total, _ in _job_states(job_ids).values())
    _wait_until(lambda: _caught_part_way(job_ids, cells // 4), DRAIN_SECONDS, interval=0.005)

    private_redis.kill()
    done_at_kill = sum(done for _, done, _, _ in _job_states(job_ids).values())
    time.sleep(redis_down_seconds)
    private_redis.start()  # empty: no AOF, no snapshot
    back_at = time.monotonic()
    at_back = _job_states(job_ids)
    waiting = {pk for pk, (status, *_) in at_back.items() if status == InferenceJobStatus.QUEUED}
    assert waiting, "every job had started before Redis came back: nothing left to show consumption"

    consuming_after = _wait_until(
        lambda: any(_job_states(list(waiting))[pk][0] != InferenceJobStatus.QUEUED for pk in waiting),
        2 * CONSUMING_AGAIN_WITHIN_SECONDS,
    )
    _wait_until(lambda: _all_finished(job_ids), DRAIN_SECONDS)
    drained_seconds = time.monotonic() - back_at
    _wait_until(lambda: _broker_backlog(private_redis.client()) == 0, DRAIN_SECONDS)

    assert consuming_after <= CONSUMING_AGAIN_WITHIN_SECONDS
    cells, lost, duplicated = _lost_and_duplicated(chaos_slides, serving_model)
    assert (cells, lost, duplicated) == (chaos_cell_count, 0, 0)
    _assert_every_job_succeeded_once(job_ids)
    assert celery_app.control.ping(destination=[worker.name], timeout=2)  # the same worker, never restarted
    chaos_report(
        f"{cells} cells in {len(job_ids)} jobs, Redis SIGKILLed at {done_at_kill} done, down "
        f"{redis_down_seconds:g} s, {len(waiting)} jobs still queued; lost {lost}, "
        f"duplicated {duplicated}; Redis back → worker consuming again {consuming_after:.1f} s; "
        f"Redis back → all jobs finished {drained_seconds:.1f} s"
    )


def test_a_slide_submitted_while_the_broker_is_unreachable_is_accepted_and_run_by_the_sweep(
    private_redis, make_worker, chaos_slides, lab_staff, serving_model, chaos_report
):
    """The web side cannot reach Redis (a network blip, Redis itself never restarts): the submit
    still succeeds, the job waits in the database with no message, and a worker's sweep sends it."""
    make_worker(
        TEST_REDIS_URL=private_redis.url,
        HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS="1",
        HEMATOVISION_DISPATCH_STALE_SECONDS="2",
    )
    slide = chaos_slides[0]
    client = Client()
    client.force_login(lab_staff)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    _broker_use(f"redis://127.0.0.1:{dead_port}/0")
    try:
        response = client.post(reverse("classifier:slide_submit", args=[slide.pk]))
    finally:
        _broker_use(private_redis.url)

    assert response.status_code == 302
    job = InferenceJob.objects.get(slide=slide)
    assert job.status == InferenceJobStatus.QUEUED
    assert _broker_backlog(private_redis.client()) == 0  # no message was ever sent
    swept_after = _wait_until(lambda: _all_finished([job.pk]), DRAIN_SECONDS)

    cells, lost, duplicated = _lost_and_duplicated([slide], serving_model)
    assert (lost, duplicated) == (0, 0)
    _assert_every_job_succeeded_once([job.pk])
    chaos_report(
        f"slide of {cells} cells submitted with the broker unreachable: accepted (302), "
        f"job finished {swept_after:.1f} s later via the sweep; lost {lost}, duplicated {duplicated}"
    )


def test_a_worker_killed_with_the_production_visibility_timeout_is_resumed_by_the_heartbeat_sweep(
    private_redis, make_worker, chaos_slides, lab_staff, serving_model, chaos_report
):
    """The broker would hand the killed worker's message back only after an hour (the default
    visibility timeout, kept here); the job's silent heartbeat makes the sweep send it again."""
    environment = {
        "TEST_REDIS_URL": private_redis.url,
        "HEMATOVISION_INFERENCE_BATCH_SIZE": "5",
        "HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS": "1",
        "HEMATOVISION_JOB_HEARTBEAT_SECONDS": "1",
        "HEMATOVISION_JOB_SILENT_SECONDS": "3",
    }
    worker = make_worker(**environment)
    slides = chaos_slides[:1]
    job_ids = _jobs_submit(lab_staff, slides)
    _wait_until(lambda: _caught_part_way(job_ids, 5), DRAIN_SECONDS, interval=0.005)

    worker.kill()
    killed_at = time.monotonic()
    done_at_kill = _job_states(job_ids)[job_ids[0]][1]
    make_worker(**environment)
    _wait_until(lambda: _all_finished(job_ids), DRAIN_SECONDS)
    resumed_seconds = time.monotonic() - killed_at

    cells, lost, duplicated = _lost_and_duplicated(slides, serving_model)
    assert (lost, duplicated) == (0, 0)
    _assert_every_job_succeeded_once(job_ids)
    assert _job_states(job_ids)[job_ids[0]][3] >= 2  # taken over after the kill
    chaos_report(
        f"{cells} cells, worker SIGKILLed at {done_at_kill} done with a 1 h visibility timeout; "
        f"heartbeat silent 3 s → sweep re-sent it; all finished {resumed_seconds:.1f} s after the kill; "
        f"lost {lost}, duplicated {duplicated}"
    )
