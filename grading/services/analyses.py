"""Analyses: request, compute (gpu worker), store (default worker), recover from dead
workers.

Life of an analysis: ``queued`` (a task was sent after the commit) -> ``running``
(claimed by a worker, ``heartbeat`` refreshed on each progress step) -> the engine's
answer is written to ``result_file`` -> ``done`` once the rows and label-map PNGs are
stored, or ``failed`` with the reason. Every step is idempotent: a done or failed
analysis is never touched again, and a second message for a running one with a fresh
heartbeat is dropped. A worker killed mid-way leaves ``running`` with a stale
heartbeat; ``analysis_requeue_stale`` (run when a worker starts and then periodically)
sends it again, up to ``ONFH_MAX_ANALYSIS_ATTEMPTS`` claims.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.utils import timezone
from PIL import Image

from grading.dicom.reader import DicomReadError
from grading.models import (
    Analysis,
    AnalysisStatus,
    HipResult,
    Instance,
    LabelMap,
    LabelMapKind,
    Series,
    SliceResult,
    Study,
)
from grading.services.audit import audit_record
from grading.services.engine import (
    hip_slice_as_dict,
    instances_read,
    segmenter_get,
    series_hip_as_dict,
)
from grading.services.studies import study_status_refresh

logger = logging.getLogger(__name__)

# Errors worth a retry with back-off: the database or the storage hiccuped.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError)

ProgressCallback = Callable[[int, int], None]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- requesting -------------------------------------------------------------------------


def _send_compute(analysis_id: int) -> None:
    """Send the gpu task. Runs after a commit: if the broker is away, the analysis stays
    queued and the sweep (``analysis_requeue_stale``) sends it again later."""
    from grading import tasks

    try:
        result = tasks.analyse_series.apply_async(kwargs={"analysis_id": analysis_id})
    except Exception:  # noqa: BLE001 - the committed request must not fail for this
        logger.exception("could not send analysis %s; the sweep will send it again", analysis_id)
        return
    Analysis.objects.filter(pk=analysis_id).update(sent=timezone.now(), celery_task_id=result.id)


def _send_store(analysis_id: int) -> None:
    from grading import tasks

    try:
        tasks.analysis_store.apply_async(kwargs={"analysis_id": analysis_id})
    except Exception:  # noqa: BLE001 - the heartbeat goes stale and the sweep resends it
        logger.exception("could not send the store step of analysis %s", analysis_id)


def analysis_request(
    *, series: Series, requested_by: Any | None = None, force: bool = False
) -> Analysis:
    """A queued analysis of the series, sent to the ``gpu`` queue after the commit.

    Returns the active (queued/running) analysis if there is one, and the latest done one
    when it already covers every instance of the series (unless ``force``).
    """
    with transaction.atomic():
        series = Series.objects.select_for_update().get(pk=series.pk)
        active = series.analyses.filter(status__in=["queued", "running"]).first()
        if active is not None:
            return active
        instance_count = series.instances.count()
        latest = series.analyses.order_by("-created", "-id").first()
        if (
            not force
            and latest is not None
            and latest.status == AnalysisStatus.DONE
            and latest.instance_count == instance_count
        ):
            return latest
        analysis = Analysis.objects.create(
            series=series,
            status=AnalysisStatus.QUEUED,
            progress_total=instance_count,
            requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
        )
        audit_record(
            actor=requested_by,
            action="analysis.request",
            object_type="analysis",
            object_id=analysis.pk,
            study=series.study,
            after={"series_instance_uid": series.series_instance_uid, "slices": instance_count},
        )
        study_status_refresh(study_id=series.study_id)
        analysis_id = analysis.pk
        transaction.on_commit(lambda: _send_compute(analysis_id))
    return analysis


def study_analyses_request(*, study_id: int) -> list[Analysis]:
    """After an upload: decide which series are graded (sequence and plane,
    ``grading.services.protocol``), then one analysis for each graded series whose
    instances have all arrived (no receiver still bringing any, and quiet for
    ``ONFH_INGEST_QUIET_S``); the ingest of the others is sent again when they may be."""
    from grading.services.arrivals import series_arrival_wait_s
    from grading.services.protocol import series_protocol_decide

    study = Study.objects.get(pk=study_id)
    analyses: list[Analysis] = []
    wait_s = 0.0
    for series in (
        Series.objects.filter(study=study).select_related("study").order_by("number", "id")
    ):
        if not series.instances.exists():
            continue
        if not series_protocol_decide(series=series).analysable:
            continue
        wait = series_arrival_wait_s(series=series)
        if wait > 0:
            wait_s = max(wait_s, wait)
            continue
        analyses.append(analysis_request(series=series))
    if wait_s > 0:
        _send_ingest_later(study_id, wait_s)
    study_status_refresh(study_id=study_id)
    return analyses


def _send_ingest_later(study_id: int, wait_s: float) -> None:
    """The series are still arriving: ask again once they may be quiet. If the broker is
    away, the sweep asks again later."""
    from grading import tasks

    def send() -> None:
        try:
            tasks.study_ingest.apply_async(
                kwargs={"study_id": study_id}, countdown=round(wait_s + 0.05, 2)
            )
        except Exception:  # noqa: BLE001 - the sweep sends it later
            logger.exception("could not send the ingest of study %s again", study_id)

    transaction.on_commit(send)


# --- computing (the gpu queue) --------------------------------------------------------------


def _claim(analysis_id: int) -> Analysis | None:
    """Take the analysis for this process, or None when there is nothing to do."""
    me = worker_name()
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.ONFH_STALE_AFTER_S)
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().filter(pk=analysis_id).first()
        if analysis is None or analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
            return None
        if (
            analysis.status == AnalysisStatus.RUNNING
            and analysis.worker != me
            and (analysis.heartbeat is not None and analysis.heartbeat > stale_before)
        ):
            return None  # another live worker has it
        if analysis.attempts >= settings.ONFH_MAX_ANALYSIS_ATTEMPTS:
            _fail(
                analysis,
                f"gave up after {analysis.attempts} attempts (the worker stopped each time)",
            )
            return None
        analysis.status = AnalysisStatus.RUNNING
        analysis.attempts += 1
        analysis.worker = me
        analysis.heartbeat = now
        analysis.started = analysis.started or now
        analysis.progress_done = 0
        analysis.save(
            update_fields=["status", "attempts", "worker", "heartbeat", "started", "progress_done"]
        )
        audit_record(
            actor=None,
            action="analysis.start",
            object_type="analysis",
            object_id=analysis.pk,
            study=analysis.series.study,
            after={"attempt": analysis.attempts, "worker": me},
        )
        study_status_refresh(study_id=analysis.series.study_id)
    return analysis


def _fail(analysis: Analysis, error: str) -> None:
    """Mark failed (inside the caller's transaction or its own)."""
    with transaction.atomic():
        analysis.status = AnalysisStatus.FAILED
        analysis.error = error[:2000]
        analysis.finished = timezone.now()
        analysis.progress_done = min(analysis.progress_done, analysis.progress_total)
        analysis.save(update_fields=["status", "error", "finished", "progress_done"])
        audit_record(
            actor=None,
            action="analysis.failed",
            object_type="analysis",
            object_id=analysis.pk,
            study=analysis.series.study,
            after={"error": analysis.error},
        )
        study_status_refresh(study_id=analysis.series.study_id)


def analysis_fail(*, analysis_id: int, error: str) -> None:
    analysis = Analysis.objects.select_related("series__study").get(pk=analysis_id)
    if analysis.status not in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
        _fail(analysis, error)


def _release(analysis_id: int) -> None:
    """Give a claimed analysis back to the queue before a retry."""
    Analysis.objects.filter(
        pk=analysis_id, status=AnalysisStatus.RUNNING, worker=worker_name()
    ).update(status=AnalysisStatus.QUEUED, worker="")


@contextmanager
def _heartbeat(analysis_id: int, worker: str) -> Iterator[None]:
    """Refresh the heartbeat every ONFH_HEARTBEAT_S while the engine runs, so that a
    long batch is not taken for a dead worker (progress steps refresh it too)."""
    interval = settings.ONFH_HEARTBEAT_S
    if interval <= 0:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    Analysis.objects.filter(
                        pk=analysis_id, worker=worker, status=AnalysisStatus.RUNNING
                    ).update(heartbeat=timezone.now())
                except Exception:  # noqa: BLE001 - a missed beat is not fatal
                    logger.warning("heartbeat of analysis %s failed", analysis_id)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{analysis_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _progress_saver(analysis: Analysis, progress_cb: ProgressCallback | None) -> ProgressCallback:
    from grading.services.notify import study_status_notify

    last = [0.0]
    study_id = analysis.series.study_id

    def save(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.25:
            return
        last[0] = now
        Analysis.objects.filter(pk=analysis.pk, worker=analysis.worker).update(
            progress_done=min(done, total), progress_total=total, heartbeat=timezone.now()
        )
        study_status_refresh(study_id=study_id, notify=False)
        study_status_notify(study_id=study_id)
        if progress_cb is not None:
            progress_cb(done, total)

    return save


def _t1_check(analysis: Analysis, slices: list[Any], result: Any) -> dict[str, Any] | None:
    """For a series of unknown weighting: does it look like T1 (marrow vs muscle)?"""
    if analysis.series.weighting != "unknown":
        return None
    from grading.engine.weighting import looks_like_t1, marrow_to_muscle_ratio

    ratio = marrow_to_muscle_ratio(
        [s.pixels for s in slices],
        [s.labelmap for s in result.slices],
        [s.pixel_spacing_mm for s in slices],
    )
    return {"ratio": ratio, "t1_like": looks_like_t1(ratio)}


def _result_write(
    analysis: Analysis, instances: list[Instance], result: Any, *, t1_check: Any = None
) -> str:
    meta = {
        "t1_check": t1_check,
        "instance_ids": [i.pk for i in instances],
        "slices": [[hip_slice_as_dict(h) for h in s.hips] for s in result.slices],
        "hips": [series_hip_as_dict(h) for h in result.hips],
        "model_version": result.model_version,
        "timings_s": {k: float(v) for k, v in (result.timings_s or {}).items()},
    }
    arrays = {
        f"labelmap_{k}": np.asarray(s.labelmap, dtype=np.uint8) for k, s in enumerate(result.slices)
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays
    )
    name = f"analyses/{analysis.pk}/result-{analysis.attempts}.npz"
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(buffer.getvalue()))


def analysis_compute(
    *, analysis_id: int, progress_cb: ProgressCallback | None = None, send_store: bool = True
) -> bool:
    """Run the engine on the series and keep its answer in ``result_file``; then the
    store step is sent (``send_store``). Returns False when there was nothing to do."""
    existing = Analysis.objects.filter(pk=analysis_id).values("status", "result_file").first()
    if existing is None or existing["status"] in ("done", "failed"):
        return False
    if existing["result_file"] and existing["status"] == "running":
        if send_store:
            _send_store(analysis_id)  # computed before, the store step was lost
        return True
    try:
        segmenter = segmenter_get()  # before the claim: loading is not analysing
    except TRANSIENT_ERRORS + (MemoryError,):
        raise
    except Exception as exc:
        # Missing or broken weights: say so on the analysis instead of retrying for ever.
        logger.exception("the segmenter could not be loaded")
        analysis_fail(analysis_id=analysis_id, error=f"the model could not be loaded: {exc}")
        return False
    analysis = _claim(analysis_id)
    if analysis is None:
        return False
    try:
        started = time.perf_counter()
        instances = list(
            Instance.objects.filter(series_id=analysis.series_id).order_by(
                "position", "instance_number", "id"
            )
        )
        if not instances:
            _fail(analysis, "the series has no instances")
            return False
        with _heartbeat(analysis.pk, analysis.worker):
            slices = instances_read(instances)
            read_s = time.perf_counter() - started
            from grading.engine.pipeline import grade_series

            result = grade_series(
                slices, segmenter, progress=_progress_saver(analysis, progress_cb)
            )
            engine_s = time.perf_counter() - started - read_s
        t1_check = _t1_check(analysis, slices, result)
        name = _result_write(analysis, instances, result, t1_check=t1_check)
        timings = {"read_s": round(read_s, 4), "engine_s": round(engine_s, 4)}
        timings.update(
            {f"engine_{k}": round(float(v), 4) for k, v in (result.timings_s or {}).items()}
        )
        with transaction.atomic():
            updated = Analysis.objects.filter(
                pk=analysis.pk, status=AnalysisStatus.RUNNING, worker=analysis.worker
            ).update(
                result_file=name,
                model_version=result.model_version or segmenter.model_version,
                timings=timings,
                instance_count=len(instances),
                progress_done=len(instances),
                progress_total=len(instances),
                heartbeat=timezone.now(),
            )
            if updated and send_store:
                transaction.on_commit(lambda: _send_store(analysis_id))
        return bool(updated)
    except TRANSIENT_ERRORS:
        _release(analysis_id)
        raise
    except SoftTimeLimitExceeded:
        _fail(analysis, "the analysis took longer than the time limit")
        return False
    except DicomReadError as exc:
        _fail(analysis, f"a stored slice could not be read: {exc}")
        return False
    except Exception as exc:
        logger.exception("analysis %s failed", analysis_id)
        _fail(analysis, f"{type(exc).__name__}: {exc}")
        return False


# --- storing (the default queue) -----------------------------------------------------------


def labelmap_png(labelmap: np.ndarray) -> bytes:
    """8-bit greyscale PNG of a (H, W) label map with values 0/1/2."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(labelmap, dtype=np.uint8), mode="L").save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def _result_read(name: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    with default_storage.open(name, "rb") as handle:
        data = np.load(io.BytesIO(handle.read()), allow_pickle=False)
        meta = json.loads(bytes(data["meta"]).decode())
        labelmaps = [data[f"labelmap_{k}"] for k in range(len(meta["instance_ids"]))]
    return meta, labelmaps


def _protocol_hips(analysis: Analysis, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The hips to store: none when a series of unknown weighting did not look like T1
    (the series is then marked not graded, with the reason); otherwise the engine's,
    with the series' protocol flags (``weighting_unknown``) added."""
    from grading.services.protocol import series_pixel_verdict

    check = meta.get("t1_check")
    if check is not None and not check["t1_like"]:
        series_pixel_verdict(series_id=analysis.series_id, ratio=check["ratio"], t1_like=False)
        return []
    extra = list(
        Series.objects.filter(pk=analysis.series_id)
        .values_list("protocol_flags", flat=True)
        .first()
        or []
    )
    return [
        {**h, "flags": list(h["flags"]) + [f for f in extra if f not in h["flags"]]}
        for h in meta["hips"]
    ]


def analysis_store(*, analysis_id: int) -> bool:
    """Turn the engine's answer into SliceResults, HipResults and AI LabelMaps (PNG);
    mark the analysis done. Idempotent: a done analysis is left as it is."""
    from grading import tasks

    analysis = Analysis.objects.filter(pk=analysis_id).select_related("series__study").first()
    if analysis is None or analysis.status != AnalysisStatus.RUNNING or not analysis.result_file:
        return False
    meta, labelmaps = _result_read(analysis.result_file.name)
    instances = Instance.objects.in_bulk(meta["instance_ids"])
    written: list[str] = []
    try:
        with transaction.atomic():
            analysis = Analysis.objects.select_for_update().get(pk=analysis_id)
            if analysis.status != AnalysisStatus.RUNNING:
                return False
            started = time.perf_counter()
            slice_rows, labelmap_rows = [], []
            for instance_id, hips, labelmap in zip(
                meta["instance_ids"], meta["slices"], labelmaps, strict=True
            ):
                instance = instances[instance_id]
                slice_rows.append(
                    SliceResult(analysis=analysis, instance=instance, hips=hips, ai_hips=hips)
                )
                row = LabelMap(
                    analysis=analysis, instance=instance, version=1, kind=LabelMapKind.AI
                )
                row.file.name = default_storage.save(
                    f"labelmaps/{analysis.pk}/{instance.pk}/v1.png",
                    ContentFile(labelmap_png(labelmap)),
                )
                written.append(row.file.name)
                labelmap_rows.append(row)
            SliceResult.objects.bulk_create(slice_rows)
            LabelMap.objects.bulk_create(labelmap_rows)
            hips_meta = _protocol_hips(analysis, meta)
            HipResult.objects.bulk_create(
                [
                    HipResult(
                        analysis=analysis,
                        side=h["side"],
                        ai_head_volume_mm3=h["head_volume_mm3"],
                        ai_necrosis_volume_mm3=h["necrosis_volume_mm3"],
                        ai_proportion=h["proportion"],
                        ai_grade=h["grade"],
                        ai_flags=h["flags"],
                        head_volume_mm3=h["head_volume_mm3"],
                        necrosis_volume_mm3=h["necrosis_volume_mm3"],
                        proportion=h["proportion"],
                        grade=h["grade"],
                        flags=h["flags"],
                        slice_count=h["slice_count"],
                        ai_proportion_interval=h.get("proportion_interval"),
                        ai_grade_probabilities=h.get("grade_probabilities"),
                        ai_method_proportions=h.get("method_proportions") or {},
                        ai_classification=h.get("classification"),
                    )
                    for h in hips_meta
                ]
            )
            # A series analysed again keeps the grades and masks people gave.
            from grading.services.reviews import review_carry_over

            review_carry_over(analysis=analysis)
            now = timezone.now()
            timings = dict(analysis.timings or {})
            timings["store_s"] = round(time.perf_counter() - started, 4)
            if analysis.started:
                timings["total_s"] = round((now - analysis.started).total_seconds(), 4)
            analysis.status = AnalysisStatus.DONE
            analysis.finished = now
            analysis.timings = timings
            analysis.progress_done = analysis.progress_total = len(instances)
            analysis.save(
                update_fields=["status", "finished", "timings", "progress_done", "progress_total"]
            )
            audit_record(
                actor=None,
                action="analysis.done",
                object_type="analysis",
                object_id=analysis.pk,
                study=analysis.series.study,
                after={
                    "model_version": analysis.model_version,
                    "hips": [
                        {
                            "side": h["side"],
                            "proportion": round(h["proportion"], 4),
                            "grade": h["grade"],
                        }
                        for h in meta["hips"]
                    ],
                },
            )
            study_status_refresh(study_id=analysis.series.study_id, notify=False)
            study_id = analysis.series.study_id
            series = analysis.series
            transaction.on_commit(lambda: tasks.study_notify.delay(study_id=study_id))
            if series.instances.count() != len(instances):
                # Slices arrived while this ran: analyse the whole series again, once
                # they have all arrived; a person's grades and masks are kept.
                transaction.on_commit(lambda: study_analyses_request(study_id=study_id))
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return True


def analysis_run(*, analysis_id: int, progress_cb: ProgressCallback | None = None) -> bool:
    """Compute and store in this process (tests, the benchmark, ``manage.py analyse``).
    Idempotent: a done analysis is left unchanged and False is returned."""
    computed = analysis_compute(analysis_id=analysis_id, progress_cb=progress_cb, send_store=False)
    if not computed:
        return False
    return analysis_store(analysis_id=analysis_id)


# --- recovery ------------------------------------------------------------------------------


def local_process_gone(worker: str) -> bool:
    """True when ``worker`` ("host:pid") names a process of this host that no longer
    exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _studies_with_late_instances(*, quiet_before: Any) -> set[int]:
    """Studies with an analysable series whose latest analysis is done but covers fewer
    (or other) instances than the series now holds, no analysis of it queued or running,
    and no instance stored since ``quiet_before``."""
    latest = Analysis.objects.filter(series=OuterRef("pk")).order_by("-created", "-id")
    active = Analysis.objects.filter(
        series=OuterRef("pk"), status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING]
    )
    return set(
        Series.objects.filter(last_arrival__lt=quiet_before)
        .exclude(plane__in=["coronal", "sagittal"])
        .annotate(
            latest_status=Subquery(latest.values("status")[:1]),
            latest_count=Subquery(latest.values("instance_count")[:1]),
            active=Exists(active),
            count=Count("instances"),
        )
        .filter(latest_status=AnalysisStatus.DONE, active=False)
        .exclude(count=F("latest_count"))
        .values_list("study_id", flat=True)
    )


def analysis_requeue_stale(*, stale_after_s: float | None = None) -> list[int]:
    """Send again what a dead worker left behind; returns the analysis ids sent.

    A ``running`` analysis whose heartbeat is older than ``stale_after_s`` (default
    ``ONFH_STALE_AFTER_S``) goes back to ``queued`` (or straight to its store step if the
    engine's answer is already kept); a ``queued`` analysis sent longer than
    ``ONFH_RESEND_QUEUED_AFTER_S`` ago is sent again (its message may have been taken
    by a worker that died before claiming it). A series whose ingest message was lost is
    analysed: one that never had an analysis, and an analysed one that received late
    instances (quiet for that long). Duplicates are harmless: the claim is idempotent.
    """
    from grading.services.arrivals import incoming_series_prune

    stale = settings.ONFH_STALE_AFTER_S if stale_after_s is None else stale_after_s
    now = timezone.now()
    sent: list[int] = []
    incoming_series_prune()  # marks of uploads and associations that died
    # A process never takes its own running analysis for a dead worker's.
    running = Analysis.objects.filter(status=AnalysisStatus.RUNNING).exclude(worker=worker_name())
    reasons: dict[int, str] = {
        pk: f"no heartbeat for over {stale:.0f} s (the worker stopped)"
        for pk in running.filter(heartbeat__lt=now - timedelta(seconds=stale)).values_list(
            "pk", flat=True
        )
    }
    # A worker of this machine whose process is gone is known dead at once (a restart
    # after a crash picks its analysis up without waiting for the heartbeat to go stale).
    for pk, worker in running.values_list("pk", "worker"):
        if pk not in reasons and local_process_gone(worker):
            reasons[pk] = f"its worker process ({worker}) is gone"
    for analysis_id, reason in reasons.items():
        with transaction.atomic():
            analysis = (
                Analysis.objects.select_for_update()
                .select_related("series__study")
                .filter(pk=analysis_id, status=AnalysisStatus.RUNNING)
                .exclude(worker=worker_name())
                .first()
            )
            if analysis is None:
                continue
            beat_stale = analysis.heartbeat is None or analysis.heartbeat < now - timedelta(
                seconds=stale
            )
            if not beat_stale and not local_process_gone(analysis.worker):
                continue  # it came back to life meanwhile
            if analysis.result_file:
                analysis.heartbeat = now
                analysis.save(update_fields=["heartbeat"])
                transaction.on_commit(lambda aid=analysis_id: _send_store(aid))
            else:
                analysis.status = AnalysisStatus.QUEUED
                analysis.worker = ""
                analysis.save(update_fields=["status", "worker"])
                transaction.on_commit(lambda aid=analysis_id: _send_compute(aid))
            audit_record(
                actor=None,
                action="analysis.requeue",
                object_type="analysis",
                object_id=analysis.pk,
                study=analysis.series.study,
                reason=reason,
            )
            study_status_refresh(study_id=analysis.series.study_id)
            sent.append(analysis_id)
    resend_before = now - timedelta(seconds=settings.ONFH_RESEND_QUEUED_AFTER_S)
    # Uploads whose ingest message was lost: analysable series that never got an analysis.
    for study_id in set(
        Series.objects.filter(
            analyses__isnull=True, instances__isnull=False, created__lt=resend_before
        )
        .exclude(graded=False)
        .values_list("study_id", flat=True)
    ):
        sent += [a.pk for a in study_analyses_request(study_id=study_id)]
    # Late instances of an analysed series whose (delayed) ingest message was lost.
    for study_id in _studies_with_late_instances(quiet_before=resend_before):
        sent += [a.pk for a in study_analyses_request(study_id=study_id)]
    for analysis_id in list(
        Analysis.objects.filter(status=AnalysisStatus.QUEUED)
        .filter(Q(sent__lt=resend_before) | Q(sent__isnull=True, created__lt=resend_before))
        .values_list("pk", flat=True)
    ):
        _send_compute(analysis_id)
        sent.append(analysis_id)
    return sent


__all__ = [
    "TRANSIENT_ERRORS",
    "analysis_compute",
    "analysis_fail",
    "analysis_request",
    "analysis_requeue_stale",
    "analysis_run",
    "analysis_store",
    "labelmap_png",
    "study_analyses_request",
    "worker_name",
]
