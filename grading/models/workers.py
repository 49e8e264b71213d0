"""Which Celery workers are alive: each worker process writes its row every few seconds."""

from __future__ import annotations

from django.db import models


class WorkerBeat(models.Model):
    """One running worker (``name`` is Celery's ``name@host``): ``last_seen`` is refreshed
    every ``ONFH_HEARTBEAT_S`` seconds by a thread of the worker, and the row deleted when
    it stops cleanly. A worker not seen for ``ONFH_STALE_AFTER_S`` is taken to be dead
    (killed, or its machine gone); with none alive the API and pages say "stalled: no
    worker"."""

    name = models.CharField(max_length=200, unique=True)
    queues = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"worker {self.name}"
