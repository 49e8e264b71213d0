"""Which series of a study are graded: the protocol decision, stored on the series.

``series_protocol_decide`` runs :func:`grading.dicom.protocol.series_decision` over the
series' instances (weighting, orientation, pixel spacing read at ingest) and stores
``weighting``, ``plane``, ``graded``, ``not_graded_reason`` and ``protocol_flags``.
``series_pixel_verdict`` records the analysis' check of a series of unknown weighting
(marrow brighter than muscle, as on T1), which the header cannot settle.
"""

from __future__ import annotations

from django.db import transaction

from grading.dicom.protocol import FileProtocol, Weighting, series_decision
from grading.engine.weighting import GRADED_PLANES, T1_MARROW_TO_MUSCLE
from grading.models import Series

NOT_T1_PREFIX = "unknown weighting and the images do not look like T1"


def series_protocol_decide(*, series: Series) -> Series:
    """Decide and store whether ``series`` is graded; returns it refreshed."""
    rows = list(
        series.instances.values_list(
            "weighting", "orientation", "pixel_spacing_row_mm", "pixel_spacing_col_mm", "position"
        )
    )
    files = [
        FileProtocol(
            weighting=weighting or Weighting.UNKNOWN,
            orientation=tuple(orientation) if orientation else None,
            pixel_spacing_mm=(row, col) if row and col else None,
            position_mm=position,
        )
        for weighting, orientation, row, col, position in rows
    ]
    decision = series_decision(files, graded_planes=GRADED_PLANES)
    graded, reason = decision.graded, decision.not_graded_reason
    if (
        graded
        and decision.weighting == Weighting.UNKNOWN
        and series.not_graded_reason.startswith(NOT_T1_PREFIX)
    ):
        graded, reason = False, series.not_graded_reason  # the pixels said so before
    Series.objects.filter(pk=series.pk).update(
        weighting=str(decision.weighting),
        plane=str(decision.plane),
        graded=graded,
        not_graded_reason=reason or "",
        protocol_flags=list(decision.flags),
    )
    series.refresh_from_db()
    return series


def series_pixel_verdict(*, series_id: int, ratio: float | None, t1_like: bool) -> None:
    """Store the analysis' verdict on a series of unknown weighting."""
    if t1_like:
        return
    shown = "no femoral head found" if ratio is None else f"marrow/muscle {ratio:.2f}"
    with transaction.atomic():
        Series.objects.filter(pk=series_id).update(
            graded=False,
            not_graded_reason=(
                f"{NOT_T1_PREFIX} ({shown}; T1 needs at least {T1_MARROW_TO_MUSCLE:g})"
            ),
        )
