"""Series whose instances are still arriving: not analysed until they are all in.

A receiver (an upload request, a DICOM association) marks each series as soon as it has
checked one of its files (:func:`series_arrival_mark`, an ``IncomingSeries`` row written
in its own transaction so that workers see it at once) and removes its marks when it
ends (:func:`series_arrival_end`). Storing instances stamps ``Series.last_arrival``.
An analysis of a series is requested only when no receiver marks it and
``ONFH_INGEST_QUIET_S`` seconds have passed since its last instance
(:func:`series_arrival_wait_s`); until then the ingest is sent again later.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from grading.models import IncomingSeries, Series, Site


class SeriesArrivals:
    """The marks one receiver holds; ``mark`` is cheap to call for every file."""

    def __init__(self, *, site: Site, receiver: str) -> None:
        self.site = site
        self.receiver = f"{receiver}:{uuid.uuid4().hex[:12]}"
        self._marked: set[str] = set()

    def mark(self, series_instance_uid: str) -> None:
        if series_instance_uid in self._marked:
            return
        self._marked.add(series_instance_uid)
        series_arrival_mark(
            site=self.site, series_instance_uids=[series_instance_uid], receiver=self.receiver
        )

    def end(self) -> None:
        if self._marked:
            series_arrival_end(receiver=self.receiver)
            self._marked.clear()


def series_arrival_mark(*, site: Site, series_instance_uids: Iterable[str], receiver: str) -> None:
    """Say that ``receiver`` is bringing instances of these series. Call it outside a
    transaction, so that it is committed (and seen by the workers) at once."""
    expires = timezone.now() + timedelta(seconds=settings.ONFH_INGEST_MARK_TTL_S)
    IncomingSeries.objects.bulk_create(
        [
            IncomingSeries(site=site, series_instance_uid=uid, receiver=receiver, expires=expires)
            for uid in series_instance_uids
        ]
    )


def series_arrival_end(*, receiver: str) -> None:
    """The receiver has ended (its instances are committed or rolled back)."""
    IncomingSeries.objects.filter(receiver=receiver).delete()


def series_arrivals_stamp(*, series_ids: Iterable[int]) -> None:
    """Instances of these series were stored now (inside the storing transaction)."""
    ids = list(series_ids)
    if ids:
        Series.objects.filter(pk__in=ids).update(last_arrival=timezone.now())


def series_arrival_wait_s(*, series: Series) -> float:
    """Seconds to wait before the series may be analysed: 0 when every receiver bringing
    its instances has ended and it has been quiet for ``ONFH_INGEST_QUIET_S``."""
    now = timezone.now()
    quiet = settings.ONFH_INGEST_QUIET_S
    if IncomingSeries.objects.filter(
        site_id=series.study.site_id,
        series_instance_uid=series.series_instance_uid,
        expires__gt=now,
    ).exists():
        return max(quiet, 1.0)
    if series.last_arrival is None or quiet <= 0:
        return 0.0
    left = quiet - (now - series.last_arrival).total_seconds()
    return max(left, 0.0)


def incoming_series_prune() -> int:
    """Remove the marks of receivers that died (past ``expires``)."""
    deleted, _ = IncomingSeries.objects.filter(expires__lte=timezone.now()).delete()
    return deleted


__all__ = [
    "SeriesArrivals",
    "incoming_series_prune",
    "series_arrival_end",
    "series_arrival_mark",
    "series_arrival_wait_s",
    "series_arrivals_stamp",
]
