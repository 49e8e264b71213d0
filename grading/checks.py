"""System checks of the grading app (run by ``manage.py`` commands at start-up)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error


def storage_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from grading.services.storage import StorageMisconfigured, storage_verify

    try:
        storage_verify()
    except StorageMisconfigured as exc:
        return [Error(str(exc), id="onfh.E001")]
    return []
