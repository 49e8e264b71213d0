"""Celery tasks of the PACS features: thin, as in ``grading.tasks``."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from grading.tasks import RETRYING


@shared_task(name="grading.interop.tasks.pacs_retrieve", **RETRYING)
def pacs_retrieve(*, node_id: int, study_instance_uid: str, user_id: int | None) -> None:
    """C-MOVE a study from a PACS to the portal's receiver."""
    from grading.interop.services import pacs_study_retrieve

    pacs_study_retrieve(node_id=node_id, study_instance_uid=study_instance_uid, user_id=user_id)


@shared_task(bind=True, name="grading.interop.tasks.pacs_send", **{**RETRYING, "max_retries": 20})
def pacs_send(self: Any, *, send_id: int) -> None:
    """C-STORE a series' results to a PACS; retried with the service's back-off."""
    from grading.interop.services import SendRetry, pacs_send_run

    try:
        pacs_send_run(send_id=send_id)
    except SendRetry as exc:
        raise self.retry(countdown=exc.countdown, exc=exc) from exc
