"""The audit trail: append an event to the keyed hash chain; anchor its head outside the
database in signed checkpoints; walk the chain and the checkpoints to verify them."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from grading.models import GENESIS_HASH, AuditChainHead, AuditEvent, Study
from grading.models.audit import audit_hmac

logger = logging.getLogger(__name__)


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
        every = settings.ONFH_AUDIT_CHECKPOINT_EVERY
        if every > 0 and event.seq % every == 0:
            transaction.on_commit(_checkpoint_quietly)
    return event


def audit_record_once(
    *,
    within_s: float,
    same_address: bool = False,
    same_after: tuple[str, ...] = (),
    actor: Any | None,
    action: str,
    object_type: str,
    object_id: str | int = "",
    **event: Any,
) -> AuditEvent | None:
    """``audit_record`` unless the trail already holds the same event from the last
    ``within_s`` seconds: the same action, object and actor (the same client address as
    well when ``same_address``; the same values of the ``same_after`` keys of ``after``).
    Returns the event written, or None when it was already there.

    For repeated looks that would flood the trail (a viewer polling a study, a patient
    reloading a link): the first of them is always recorded. A look that finds the event
    takes no lock; otherwise the check is made again under the chain head's lock, inside
    the write's own transaction, so two requests at the same moment write exactly one
    event.
    """
    person = actor if actor is not None and actor.is_authenticated else None
    after = _json_safe(event.get("after")) or {}

    def already_there() -> bool:
        if within_s <= 0:
            return False
        seen = AuditEvent.objects.filter(
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            actor=person,
            time__gte=timezone.now() - timedelta(seconds=within_s),
        )
        if person is None:
            seen = seen.filter(actor_username=getattr(actor, "username", "") if actor else "")
        if same_address:
            seen = seen.filter(client_address=event.get("client_address") or None)
        for key in same_after:
            seen = seen.filter(**{f"after__{key}": after.get(key)})
        return seen.exists()

    # The common case (the viewer's next poll) takes no lock: events are never removed,
    # so one seen here stays there.
    if already_there():
        return None
    with transaction.atomic():
        AuditChainHead.objects.get_or_create(pk=1)
        AuditChainHead.objects.select_for_update().get(pk=1)
        if already_there():  # another request wrote it meanwhile
            return None
        return audit_record(
            actor=actor, action=action, object_type=object_type, object_id=object_id, **event
        )


# --- checkpoints: the chain head anchored outside the database ---------------------------


def _checkpoint_signature(*, seq: int, hash_: str, time: str) -> str:
    return audit_hmac({"kind": "audit-checkpoint", "seq": seq, "hash": hash_, "time": time})


def _checkpoint_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.strip()]


def _checkpoint_last(path: Path) -> dict[str, Any] | None:
    """The last line of the file, read from its end (the file only grows)."""
    if not path.exists():
        return None
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 4096))
        lines = [x for x in handle.read().splitlines() if x.strip()]
    if not lines:
        return None
    try:
        value = json.loads(lines[-1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def audit_checkpoint_write(*, force: bool = False) -> dict[str, Any] | None:
    """Append a signed checkpoint of the committed chain head to
    ``ONFH_AUDIT_CHECKPOINT_FILE`` when the head moved by ``ONFH_AUDIT_CHECKPOINT_EVERY``
    events, or moved at all and the last checkpoint is older than
    ``ONFH_AUDIT_CHECKPOINT_EVERY_S`` (always when ``force`` and the head moved).

    The file is opened O_APPEND (0600) under an exclusive lock, so processes append whole
    lines and never rewrite one; a line is ``{"seq","hash","time","sig"}`` with ``sig`` the
    HMAC of the other fields with the audit key. Returns the line written, or None.
    """
    path = Path(settings.ONFH_AUDIT_CHECKPOINT_FILE)
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None or head.seq == 0:
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        last = _checkpoint_last(path)
        last_seq = int(last["seq"]) if last else 0
        if head.seq <= last_seq:
            return None
        if not force and head.seq - last_seq < settings.ONFH_AUDIT_CHECKPOINT_EVERY:
            age = (
                (timezone.now() - datetime.fromisoformat(last["time"])).total_seconds()
                if last
                else float("inf")
            )
            if age < settings.ONFH_AUDIT_CHECKPOINT_EVERY_S:
                return None
        now = timezone.now().isoformat(timespec="microseconds")
        line = {
            "seq": head.seq,
            "hash": head.hash,
            "time": now,
            "sig": _checkpoint_signature(seq=head.seq, hash_=head.hash, time=now),
        }
        handle.write(json.dumps(line, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return line


def _checkpoint_quietly() -> None:
    try:
        audit_checkpoint_write()
    except Exception:  # noqa: BLE001 - the next checkpoint (or the sweep) catches up
        logger.exception("could not write an audit checkpoint")


@dataclass(frozen=True)
class AuditVerifyReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    checkpoints: int = 0

    def __str__(self) -> str:
        if self.ok:
            return (
                f"audit chain intact: {self.checked} events, "
                f"{self.checkpoints} signed checkpoints agree"
            )
        return f"audit chain BROKEN at event #{self.first_bad_seq}: {self.problem}"


@dataclass
class _Checkpoints:
    by_seq: dict[int, str] = field(default_factory=dict)
    problem: str = ""
    bad_seq: int | None = None


def _checkpoints_read() -> _Checkpoints:
    """Checkpoints whose signature holds, by seq; the first bad line as a problem."""
    found = _Checkpoints()
    path = Path(settings.ONFH_AUDIT_CHECKPOINT_FILE)
    last_seq = 0
    for number, text in enumerate(_checkpoint_lines(path), start=1):
        try:
            line = json.loads(text)
            seq, hash_, time = int(line["seq"]), str(line["hash"]), str(line["time"])
            signed = line["sig"] == _checkpoint_signature(seq=seq, hash_=hash_, time=time)
        except (ValueError, KeyError, TypeError):
            signed, seq = False, 0
        if not signed:
            found.problem = (
                f"checkpoint line {number} of {path} is not signed with the audit key "
                "(the file was edited, or ONFH_AUDIT_KEY changed)"
            )
            found.bad_seq = seq or None
            return found
        if seq < last_seq:
            found.problem = f"checkpoint line {number} of {path} goes back to #{seq}"
            found.bad_seq = seq
            return found
        last_seq = seq
        found.by_seq[seq] = hash_
    return found


def audit_verify(*, chunk_size: int = 2000) -> AuditVerifyReport:
    """Walk the chain in ``seq`` order and report the first changed, missing or
    inserted event; then hold it to the signed checkpoints outside the database (a chain
    rewritten from some event on, even with the key, no longer ends in a checkpointed
    hash). Reads rows as stored (``.iterator()``, no caching)."""
    checkpoints = _checkpoints_read()
    if checkpoints.problem:
        return AuditVerifyReport(False, 0, checkpoints.bad_seq, checkpoints.problem)
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
            hint = " (or ONFH_AUDIT_KEY is not the key it was written with)" if checked == 0 else ""
            return AuditVerifyReport(
                False,
                checked,
                event.seq,
                f"the row was changed (its keyed hash does not match){hint}",
            )
        anchored = checkpoints.by_seq.get(event.seq)
        if anchored is not None and anchored != event.hash:
            return AuditVerifyReport(
                False,
                checked,
                event.seq,
                "the event differs from the signed checkpoint outside the database "
                "(the chain was rewritten from here or earlier)",
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
    beyond = [seq for seq in checkpoints.by_seq if seq > checked]
    if beyond:
        return AuditVerifyReport(
            False,
            checked,
            checked + 1,
            f"a signed checkpoint names event #{max(beyond)} but the chain ends at "
            f"#{checked}: the newest events were deleted",
        )
    return AuditVerifyReport(True, checked, checkpoints=len(checkpoints.by_seq))
