"""Push study status and audit events to WebSocket clients.

With ``REDIS_URL`` set, messages go straight into the channels-redis layer from any
process (web or worker). Without it (the embedded mode) the channel layer is in-memory
and lives only in the ASGI process, so every process writes an ``OutboxMessage`` row
and the ASGI process relays new rows to the layer (``outbox_relay_ensure_started``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from grading.failure_reasons import failure_reason
from grading.models import AuditEvent, OutboxMessage, Study, StudyStatus
from grading.selectors import site_group, study_group

logger = logging.getLogger(__name__)

OUTBOX_KEEP = timedelta(minutes=10)


def _uses_outbox() -> bool:
    return not settings.REDIS_URL


def group_message_send(*, groups: list[str], message: dict[str, Any]) -> None:
    """Send ``message`` (its ``type`` names the consumer handler) to each group."""
    if _uses_outbox():
        OutboxMessage.objects.bulk_create(
            [OutboxMessage(group=group, payload=message) for group in groups]
        )
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # noqa: BLE001 - a push is best effort; the REST state is the truth
            logger.exception("could not push %s to %s", message.get("type"), group)


def _study_groups(study: Study) -> list[str]:
    return [site_group(site_id=study.site_id), study_group(study_id=study.pk)]


def study_status_message(*, study: Study) -> dict[str, Any]:
    return {
        "type": "study.status",
        "study_id": study.pk,
        "status": study.status,
        "progress": {"done": study.progress_done, "total": study.progress_total},
        "error": study.error or None,
        "failure_reason": (
            failure_reason(study.error) or None if study.status == StudyStatus.FAILED else None
        ),
        "stalled": _stall_of(study),
    }


def _stall_of(study: Study) -> str | None:
    if study.status not in ("queued", "running"):
        return None
    from grading.selectors import analysis_stall_reason

    return analysis_stall_reason()


def study_status_notify(*, study_id: int) -> None:
    """Push the study's current status (queued, running n of m, done, failed + reason)."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return
    group_message_send(groups=_study_groups(study), message=study_status_message(study=study))


def audit_event_as_dict(*, event: AuditEvent) -> dict[str, Any]:
    """An event as the audit API and the WebSocket show it."""
    return {
        "id": event.pk,
        "time": event.time.isoformat(),
        "actor": event.actor_username or None,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "client_address": event.client_address,
    }


def _live_event(data: dict[str, Any]) -> dict[str, Any]:
    from grading.permissions import redact_patient_keys

    return {
        **data,
        "before": redact_patient_keys(data["before"]),
        "after": redact_patient_keys(data["after"]),
        "client_address": None,
    }


def study_audit_notify(*, event_id: int) -> None:
    event = AuditEvent.objects.filter(pk=event_id).select_related("study").first()
    if event is None or event.study is None:
        return
    group_message_send(
        groups=_study_groups(event.study),
        message={
            "type": "study.audit",
            "study_id": event.study_id,
            # Every member who sees the study gets it, students too: no client address
            # (admins only) and no patient keys (an admin's change of the patient's
            # identity); the audit API gives each reader what they may see.
            "event": _live_event(audit_event_as_dict(event=event)),
        },
    )


def study_status_notify_on_commit(*, study_id: int) -> None:
    transaction.on_commit(lambda: study_status_notify(study_id=study_id))


# --- the relay, in the ASGI process of the embedded mode --------------------------------

_relay_lock = threading.Lock()
_relay_ready: dict[int, asyncio.Event] = {}  # event loop id -> set once its relay is running


def _outbox_last_id() -> int:
    last = OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def _outbox_fetch(after_id: int, limit: int = 500) -> list[tuple[int, str, dict[str, Any]]]:
    return list(
        OutboxMessage.objects.filter(id__gt=after_id)
        .order_by("id")
        .values_list("id", "group", "payload")[:limit]
    )


def _outbox_prune() -> None:
    OutboxMessage.objects.filter(created__lt=timezone.now() - OUTBOX_KEEP).delete()


async def outbox_relay_run(
    *, poll_s: float | None = None, once: bool = False, ready: asyncio.Event | None = None
) -> None:
    """Relay outbox rows written after the relay started to the channel layer, forever.
    ``ready`` is set once the starting point is read: every row written after that is
    relayed."""
    layer = get_channel_layer()
    poll = settings.ONFH_OUTBOX_POLL_S if poll_s is None else poll_s
    try:
        last_id = await database_sync_to_async(_outbox_last_id)()
    finally:
        if ready is not None:  # also when the read failed: a waiting socket goes on
            ready.set()
    rounds = 0
    while True:
        try:
            rows = await database_sync_to_async(_outbox_fetch)(last_id)
            for row_id, group, payload in rows:
                await layer.group_send(group, payload)
                last_id = row_id
            rounds += 1
            if rounds % 600 == 0:
                await database_sync_to_async(_outbox_prune)()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep relaying after a DB hiccup
            logger.exception("outbox relay round failed")
        if once:
            return
        await asyncio.sleep(poll)


async def outbox_relay_ensure_started() -> None:
    """Start the relay once per event loop of this process, and wait until it relays
    every row written from now on (a socket accepted after this misses nothing)."""
    if not _uses_outbox():
        return
    loop = asyncio.get_running_loop()
    with _relay_lock:
        ready = _relay_ready.get(id(loop))
        if ready is None:
            ready = _relay_ready[id(loop)] = asyncio.Event()
            task = loop.create_task(outbox_relay_run(ready=ready))

            def _forget(_: asyncio.Task[None]) -> None:
                with _relay_lock:
                    _relay_ready.pop(id(loop), None)

            task.add_done_callback(_forget)
    await ready.wait()
