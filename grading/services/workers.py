"""Worker liveness and the sweep that runs in every long-lived process.

A worker writes its ``WorkerBeat`` row every ``ONFH_HEARTBEAT_S`` seconds; the web
process and the workers each run ``sweep_forever``: analyses of dead workers are sent
again (``analysis_requeue_stale``), PACS sends whose message was lost sent again
(``pacs_sends_sweep``), expired second-opinion requests closed, and a signed
audit checkpoint appended when one is due. The web process sweeping too is what makes a
study of a killed worker leave "running 87 %" when no worker is left to sweep.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from grading.models import WorkerBeat

logger = logging.getLogger(__name__)


def worker_beat_write(*, name: str, queues: str) -> None:
    now = timezone.now()
    WorkerBeat.objects.update_or_create(
        name=name,
        defaults={"queues": queues, "pid": os.getpid(), "last_seen": now},
        create_defaults={"queues": queues, "pid": os.getpid(), "started": now, "last_seen": now},
    )


def worker_beat_remove(*, name: str) -> None:
    WorkerBeat.objects.filter(name=name).delete()


def sweep_once(*, requeue: bool = True) -> list[int]:
    """One round of the sweep; returns the analyses sent again."""
    from grading.consults.services import second_opinion_requests_expire
    from grading.services.analyses import analysis_requeue_stale
    from grading.services.audit import audit_checkpoint_write

    sent = analysis_requeue_stale() if requeue else []
    if sent:
        logger.warning("sent again analyses left by a stopped worker: %s", sent)
    second_opinion_requests_expire()
    from grading.interop.services import pacs_sends_sweep

    pacs_sends_sweep()
    audit_checkpoint_write()
    return sent


def sweep_forever(
    stop: threading.Event, *, every_s: float, before: Callable[[], None] | None = None
) -> None:
    """``before`` (the worker's own beat) and a sweep every ``every_s`` until ``stop``."""
    while not stop.is_set():
        try:
            close_old_connections()
            if before is not None:
                before()
            sweep_once()
        except Exception:  # noqa: BLE001 - keep sweeping after a DB hiccup
            logger.exception("sweep failed")
        finally:
            close_old_connections()
        stop.wait(every_s)


_web_sweeper: threading.Thread | None = None


def web_sweeper_start() -> None:
    """The sweep in the web process (daphne), in a daemon thread, once per process."""
    global _web_sweeper
    every = settings.ONFH_SWEEP_EVERY_S
    if every <= 0 or (_web_sweeper is not None and _web_sweeper.is_alive()):
        return
    _web_sweeper = threading.Thread(
        target=sweep_forever,
        args=(threading.Event(),),
        kwargs={"every_s": every},
        name="onfh-web-sweeper",
        daemon=True,
    )
    _web_sweeper.start()
