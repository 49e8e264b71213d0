"""Celery tasks: configuration, routing, idempotency (each task run twice), recovery of
analyses left by dead workers, and the real segmenter on a small phantom series."""

from __future__ import annotations

import os
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from grading import tasks
from grading.models import Analysis, AuditEvent, HipResult, LabelMap, OutboxMessage, SliceResult
from grading.services import analyses as analysis_services
from onfh_site.celery import app
from tests.conftest import weights_available
from tests.grading_tests.test_services import analysed_study

pytestmark = pytest.mark.django_db

ALL_TASKS = [
    tasks.study_ingest,
    tasks.analyse_series,
    tasks.analysis_store,
    tasks.study_notify,
    tasks.analyses_requeue_stale,
]


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_task_options(task) -> None:
    assert task.acks_late and task.reject_on_worker_lost
    assert OperationalError in task.autoretry_for and OSError in task.autoretry_for
    assert task.retry_backoff and task.max_retries >= 3


def test_model_work_goes_to_the_gpu_queue_and_the_rest_to_default() -> None:
    route = app.amqp.router.route
    assert route({}, tasks.analyse_series.name)["queue"].name == "gpu"
    for task in (tasks.study_ingest, tasks.analysis_store, tasks.study_notify):
        assert route({}, task.name)["queue"].name == "default"
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_soft_time_limit and app.conf.task_time_limit
    assert not app.conf.task_always_eager


def _uploaded(scenario, phantom_files):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from grading.services import upload_ingest

    report = upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        client_address=None,
        files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in phantom_files.paths],
    )
    return report.studies[0]


def test_study_ingest_twice_makes_one_analysis_sent_once(
    scenario, phantom_files, django_capture_on_commit_callbacks
) -> None:
    study = _uploaded(scenario, phantom_files)
    with (
        mock.patch.object(tasks.analyse_series, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        send.return_value.id = "task-1"
        tasks.study_ingest(study_id=study.pk)
        tasks.study_ingest(study_id=study.pk)
    assert Analysis.objects.count() == 1
    analysis = Analysis.objects.get()
    assert analysis.status == "queued" and analysis.progress_total == 6
    send.assert_called_once_with(kwargs={"analysis_id": analysis.pk})
    study.refresh_from_db()
    assert study.status == "queued" and study.progress_total == 6


def test_analysis_store_and_notify_twice_change_nothing(scenario, phantom_files) -> None:
    study = analysed_study(scenario, phantom_files)
    analysis = Analysis.objects.get()
    counts = (
        SliceResult.objects.count(),
        HipResult.objects.count(),
        LabelMap.objects.count(),
        AuditEvent.objects.count(),
    )
    tasks.analysis_store(analysis_id=analysis.pk)
    tasks.analysis_store(analysis_id=analysis.pk)
    assert counts == (
        SliceResult.objects.count(),
        HipResult.objects.count(),
        LabelMap.objects.count(),
        AuditEvent.objects.count(),
    )
    before = OutboxMessage.objects.count()
    tasks.study_notify(study_id=study.pk)
    tasks.study_notify(study_id=study.pk)
    assert OutboxMessage.objects.count() == before + 4  # site group + study group, twice


def test_analyse_series_on_a_done_analysis_is_a_no_op(scenario, phantom_files) -> None:
    analysed_study(scenario, phantom_files)
    analysis = Analysis.objects.get()
    with mock.patch.object(analysis_services, "segmenter_get") as load:
        tasks.analyse_series(analysis_id=analysis.pk)
        tasks.analyse_series(analysis_id=analysis.pk)
    load.assert_not_called()
    assert Analysis.objects.get().attempts == 1


def _stale_running(scenario, phantom_files, **fields) -> Analysis:
    study = _uploaded(scenario, phantom_files)
    long_ago = timezone.now() - timedelta(minutes=10)
    return Analysis.objects.create(
        series=study.series.get(),
        status="running",
        worker="dead-host:1",
        attempts=1,
        heartbeat=long_ago,
        started=long_ago,
        progress_total=6,
        progress_done=2,
        **fields,
    )


def test_stale_running_analysis_is_requeued_once(
    scenario, phantom_files, django_capture_on_commit_callbacks
) -> None:
    analysis = _stale_running(scenario, phantom_files)
    with (
        mock.patch.object(tasks.analyse_series, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        send.return_value.id = "task-2"
        tasks.analyses_requeue_stale()
        tasks.analyses_requeue_stale()  # the second sweep finds nothing stale
    analysis.refresh_from_db()
    assert analysis.status == "queued" and analysis.worker == ""
    send.assert_called_once_with(kwargs={"analysis_id": analysis.pk})
    event = AuditEvent.objects.get(action="analysis.requeue")
    assert "heartbeat" in event.reason


def test_fresh_running_analysis_of_another_worker_is_left_alone(scenario, phantom_files) -> None:
    analysis = _stale_running(scenario, phantom_files)
    Analysis.objects.filter(pk=analysis.pk).update(heartbeat=timezone.now())
    assert analysis_services.analysis_requeue_stale() == []
    assert analysis_services._claim(analysis.pk) is None  # another live worker has it


def test_stale_analysis_with_a_kept_result_goes_straight_to_store(
    scenario, phantom_files, django_capture_on_commit_callbacks
) -> None:
    analysis = _stale_running(scenario, phantom_files, result_file="analyses/x/result-1.npz")
    with (
        mock.patch.object(tasks.analysis_store, "apply_async") as store,
        mock.patch.object(tasks.analyse_series, "apply_async") as compute,
        django_capture_on_commit_callbacks(execute=True),
    ):
        analysis_services.analysis_requeue_stale()
    store.assert_called_once_with(kwargs={"analysis_id": analysis.pk})
    compute.assert_not_called()


def test_an_analysis_that_kills_its_workers_gives_up(scenario, phantom_files, settings) -> None:
    settings.ONFH_MAX_ANALYSIS_ATTEMPTS = 3
    analysis = _stale_running(scenario, phantom_files)
    Analysis.objects.filter(pk=analysis.pk).update(attempts=3, status="queued")
    assert analysis_services._claim(analysis.pk) is None
    analysis.refresh_from_db()
    assert analysis.status == "failed" and "gave up after 3 attempts" in analysis.error
    assert analysis.series.study.__class__.objects.get().status == "failed"


def test_transient_error_releases_the_claim_and_raises_for_a_retry(scenario, phantom_files) -> None:
    study = _uploaded(scenario, phantom_files)
    analysis = Analysis.objects.create(series=study.series.get(), progress_total=6)
    with (
        mock.patch.object(analysis_services, "segmenter_get"),
        mock.patch.object(analysis_services, "instances_read", side_effect=OSError("storage away")),
        pytest.raises(OSError),
    ):
        analysis_services.analysis_compute(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == "queued" and analysis.worker == "" and analysis.attempts == 1


needs_weights = pytest.mark.skipif(not weights_available(), reason="no shipped weights yet")


@needs_weights
@pytest.mark.slow
def test_real_segmenter_grades_a_phantom_series_and_a_rerun_changes_nothing(
    scenario, phantom_files, django_capture_on_commit_callbacks
) -> None:
    from grading.services import analysis_run

    study = _uploaded(scenario, phantom_files)
    analysis = Analysis.objects.create(series=study.series.get(), progress_total=6)
    seen: list[tuple[int, int]] = []
    with django_capture_on_commit_callbacks(execute=False):
        assert analysis_run(analysis_id=analysis.pk, progress_cb=lambda d, t: seen.append((d, t)))
    analysis.refresh_from_db()
    assert analysis.status == "done", analysis.error
    assert analysis.model_version.startswith("onfh-net")
    assert analysis.progress_done == analysis.progress_total == 6
    assert seen and seen[-1] == (6, 6)
    assert {"read_s", "engine_s", "store_s"} <= set(analysis.timings)
    assert SliceResult.objects.filter(analysis=analysis).count() == 6
    assert LabelMap.objects.filter(analysis=analysis, kind="ai").count() == 6
    hips = {h.side: h for h in HipResult.objects.filter(analysis=analysis)}
    assert "right" in hips and hips["right"].ai_grade in {"none", "mild", "moderate", "severe"}
    study.refresh_from_db()
    assert study.status == "done" and study.ai_grade is not None
    snapshot = (
        Analysis.objects.values().get(pk=analysis.pk),
        SliceResult.objects.count(),
        LabelMap.objects.count(),
        AuditEvent.objects.count(),
    )
    assert not analysis_run(analysis_id=analysis.pk)
    tasks.analyse_series(analysis_id=analysis.pk)
    assert snapshot == (
        Analysis.objects.values().get(pk=analysis.pk),
        SliceResult.objects.count(),
        LabelMap.objects.count(),
        AuditEvent.objects.count(),
    )


def test_a_model_that_cannot_load_fails_the_analysis_with_the_reason(
    scenario, phantom_files
) -> None:
    study = _uploaded(scenario, phantom_files)
    analysis = Analysis.objects.create(series=study.series.get(), progress_total=6)
    with mock.patch.object(
        analysis_services, "segmenter_get", side_effect=ValueError("weights are corrupt")
    ):
        tasks.analyse_series(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == "failed" and "weights are corrupt" in analysis.error
    study.refresh_from_db()
    assert study.status == "failed" and "weights are corrupt" in study.error


def test_broker_away_after_commit_does_not_fail_the_upload_and_the_sweep_catches_up(
    scenario, phantom_files, settings, django_capture_on_commit_callbacks
) -> None:
    from kombu.exceptions import OperationalError as BrokerDown

    with (
        mock.patch.object(tasks.study_ingest, "delay", side_effect=BrokerDown("no broker")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        study = _uploaded(scenario, phantom_files)
    assert study.pk and not Analysis.objects.exists()
    settings.ONFH_RESEND_QUEUED_AFTER_S = 0
    with (
        mock.patch.object(tasks.analyse_series, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        send.return_value.id = "task-3"
        sent = analysis_services.analysis_requeue_stale()
    analysis = Analysis.objects.get()
    assert analysis.pk in sent and analysis.status == "queued"
    send.assert_called_with(kwargs={"analysis_id": analysis.pk})


def test_analysis_of_a_dead_local_worker_is_requeued_without_waiting(
    scenario, phantom_files, django_capture_on_commit_callbacks
) -> None:
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    analysis = _stale_running(scenario, phantom_files)
    Analysis.objects.filter(pk=analysis.pk).update(
        heartbeat=timezone.now(), worker=f"{socket.gethostname()}:{gone.pid}"
    )
    with (
        mock.patch.object(tasks.analyse_series, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        send.return_value.id = "task-4"
        assert analysis_services.analysis_requeue_stale() == [analysis.pk]
    assert "is gone" in AuditEvent.objects.get(action="analysis.requeue").reason
    # A live local worker (this very process, seen from elsewhere) is left alone.
    assert not analysis_services.local_process_gone(f"{socket.gethostname()}:{os.getpid()}")
