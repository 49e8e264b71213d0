"""What every page's frame needs: whether analyses can run at all."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def worker_status(request: HttpRequest) -> dict[str, Any]:
    """``analysis_stalled``: "no worker" when no worker is alive (signed-in pages only)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from grading.selectors import analysis_stall_reason

    return {"analysis_stalled": analysis_stall_reason()}
