"""Celery tasks: thin. Each takes keyword-only ids, calls one service, returns nothing.

ingest (``study_ingest``) -> analyse (``analyse_series``, queue ``gpu``) -> store
(``analysis_store``) -> notify (``study_notify``). All are idempotent (a rerun of a finished
step is a no-op), acknowledged late, rejected back to the broker if the worker is lost,
and retried with exponential back-off on transient database or storage errors. Lost
work is found again by ``analyses_requeue_stale``, which every worker runs at start and
then every ``ONFH_SWEEP_EVERY_S`` seconds.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

from grading.services.analyses import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

RETRYING = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
    "reject_on_worker_lost": True,
}


@shared_task(name="grading.tasks.study_ingest", **RETRYING)
def study_ingest(*, study_id: int) -> None:
    """After an upload: request an analysis of each axial MR series of the study."""
    from grading.services.analyses import study_analyses_request

    study_analyses_request(study_id=study_id)


@shared_task(name="grading.tasks.analyse_series", **RETRYING)
def analyse_series(*, analysis_id: int) -> None:
    """Run the engine (queue ``gpu``); sends ``analysis_store`` when it is done."""
    from grading.services.analyses import analysis_compute

    analysis_compute(analysis_id=analysis_id)


@shared_task(name="grading.tasks.analysis_store", **RETRYING)
def analysis_store(*, analysis_id: int) -> None:
    """Store the engine's answer as results and label maps; sends ``study_notify``."""
    from grading.services.analyses import analysis_store as store

    store(analysis_id=analysis_id)


@shared_task(name="grading.tasks.study_notify", **RETRYING)
def study_notify(*, study_id: int) -> None:
    from grading.services.notify import study_status_notify

    study_status_notify(study_id=study_id)


@shared_task(name="grading.tasks.analyses_requeue_stale", **RETRYING)
def analyses_requeue_stale() -> None:
    from grading.services.analyses import analysis_requeue_stale

    analysis_requeue_stale()


# --- worker process hooks -------------------------------------------------------------------


@worker_init.connect
def _check_storage(**_: object) -> None:
    """S3 mode: a worker without its bucket stops at start, saying why."""
    from grading.services.storage import storage_verify

    storage_verify()


@worker_process_init.connect
def _load_segmenter(**_: object) -> None:
    """Load the model once per worker process, before the first task."""
    if not settings.ONFH_PRELOAD_SEGMENTER:
        return
    from grading.services.engine import segmenter_get

    try:
        segmenter_get()
    except Exception:  # noqa: BLE001 - the task reports the real error on first use
        logger.exception("could not preload the segmenter")


_sweeper_stop = threading.Event()
_worker = {"name": ""}


def _beat_forever(name: str, queues: str) -> None:
    """This worker's WorkerBeat row, every ONFH_HEARTBEAT_S seconds."""
    from grading.services.workers import worker_beat_write

    every = settings.ONFH_HEARTBEAT_S or settings.ONFH_SWEEP_EVERY_S
    while not _sweeper_stop.is_set():
        try:
            close_old_connections()
            worker_beat_write(name=name, queues=queues)
        except Exception:  # noqa: BLE001 - keep beating after a DB hiccup
            logger.exception("worker heartbeat failed")
        finally:
            close_old_connections()
        _sweeper_stop.wait(every)


@worker_ready.connect
def _start_sweeper(sender: object = None, **_: object) -> None:
    """Say this worker is alive, then look for analyses of dead workers now and every
    ONFH_SWEEP_EVERY_S seconds (the web process sweeps too: grading.services.workers)."""
    if settings.ONFH_SWEEP_EVERY_S <= 0:
        return
    from grading.services.workers import sweep_forever

    name = str(getattr(sender, "hostname", "") or f"worker@{os.getpid()}")
    try:
        queues = ",".join(sorted(q.name for q in sender.task_consumer.queues))  # type: ignore[union-attr]
    except AttributeError:
        queues = ""
    _worker["name"] = name
    _sweeper_stop.clear()
    threading.Thread(
        target=_beat_forever, args=(name, queues), name="onfh-worker-beat", daemon=True
    ).start()
    threading.Thread(
        target=sweep_forever,
        args=(_sweeper_stop,),
        kwargs={"every_s": settings.ONFH_SWEEP_EVERY_S},
        name="onfh-sweeper",
        daemon=True,
    ).start()


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    _sweeper_stop.set()
    if _worker["name"]:
        from grading.services.workers import worker_beat_remove

        try:
            close_old_connections()
            worker_beat_remove(name=_worker["name"])
        except Exception:  # noqa: BLE001 - the beat goes stale instead
            logger.exception("could not remove this worker's heartbeat")
