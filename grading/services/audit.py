"""The audit trail: append an event to the hash chain; walk the chain to verify it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from grading.models import GENESIS_HASH, AuditChainHead, AuditEvent, Study


def _json_safe(value: Any) -> Any:
    # Store exactly what is hashed: a JSON round trip turns dates, UUIDs and tuples
    # into what the JSON column will give back.
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def audit_record(
    *,
    actor: Any | None,
    action: str,
    object_type: str,
    object_id: str | int = "",
    study: Study | None = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    client_address: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. ``actor`` None means the system (the worker).

    The chain head row is locked (``select_for_update``; on SQLite the transaction's
    write lock, taken at BEGIN IMMEDIATE), so concurrent writers queue up and the chain
    never forks. Runs inside the caller's transaction when there is one, so an event is
    stored if and only if the change it describes is.
    """
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            AuditChainHead.objects.get_or_create(pk=1)
            head = AuditChainHead.objects.select_for_update().get(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            time=timezone.now(),
            actor=actor if actor is not None and actor.is_authenticated else None,
            actor_username=getattr(actor, "username", "") if actor is not None else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            study=study,
            before=_json_safe(before),
            after=_json_safe(after),
            reason=reason or "",
            client_address=client_address or None,
            prev_hash=head.hash,
        )
        event.hash = event.compute_hash()
        event.save(force_insert=True)
        head.seq = event.seq
        head.hash = event.hash
        head.save(update_fields=["seq", "hash"])
        if study is not None:
            from grading.services.notify import study_audit_notify

            event_id = event.pk
            transaction.on_commit(lambda: study_audit_notify(event_id=event_id))
    return event


@dataclass(frozen=True)
class AuditVerifyReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} events"
        return f"audit chain BROKEN at event #{self.first_bad_seq}: {self.problem}"


def audit_verify(*, chunk_size: int = 2000) -> AuditVerifyReport:
    """Walk the chain in ``seq`` order and report the first changed, missing or
    inserted event. Reads rows as stored (``.iterator()``, no caching)."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if event.seq != expected_seq:
            return AuditVerifyReport(
                False,
                checked,
                expected_seq,
                f"event #{expected_seq} is missing (next stored is #{event.seq})",
            )
        if event.prev_hash != expected_prev:
            return AuditVerifyReport(
                False,
                checked,
                event.seq,
                "prev_hash does not match the previous event's hash "
                "(the previous event was changed, deleted or replaced)",
            )
        if event.compute_hash() != event.hash:
            return AuditVerifyReport(
                False, checked, event.seq, "the row was changed (its hash does not match)"
            )
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != checked or head_hash != expected_prev:
        return AuditVerifyReport(
            False,
            checked,
            checked + 1 if head_seq > checked else head_seq,
            f"the chain head says #{head_seq} is the last event but #{checked} is: "
            "the newest events were deleted (or the head was changed)",
        )
    return AuditVerifyReport(True, checked)
