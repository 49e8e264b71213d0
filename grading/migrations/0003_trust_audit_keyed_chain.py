"""Re-key the audit chain: from sha256 (unkeyed) to HMAC-SHA256 with ONFH_AUDIT_KEY.

Existing events keep every field; only ``prev_hash`` and ``hash`` are recomputed. First
the old, unkeyed chain is walked as ``verify_audit`` used to walk it: if it is broken,
the migration stops and says where (set ONFH_AUDIT_REKEY_BROKEN=1 to re-key anyway; the
break is then recorded in the re-key event). Then every event is re-hashed with the key
in ``seq`` order, and one ``audit.rekey`` event is appended that records how many events
were re-keyed and the old head hash (write it down: it is what the old chain could be
checked against). The hashing here is a frozen copy of ``AuditEvent.canonical_fields``
as it stood, so a later change to the model does not change what this migration does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from django.conf import settings
from django.db import migrations
from django.utils import timezone

GENESIS = "0" * 64


def _canonical(row, prev_hash: str) -> bytes:
    fields = {
        "seq": int(row.seq),
        "time": row.time.isoformat(timespec="microseconds"),
        "actor_id": row.actor_id,
        "actor_username": row.actor_username,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": str(row.object_id),
        "study_id": row.study_id,
        "before": row.before,
        "after": row.after,
        "reason": row.reason,
        "client_address": row.client_address,
        "prev_hash": prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _legacy_problem(rows) -> str:
    prev, expected_seq = GENESIS, 1
    for row in rows:
        if row.seq != expected_seq:
            return f"event #{expected_seq} is missing"
        if row.prev_hash != prev:
            return f"event #{row.seq}: prev_hash does not match"
        if hashlib.sha256(_canonical(row, row.prev_hash)).hexdigest() != row.hash:
            return f"event #{row.seq} was changed"
        prev, expected_seq = row.hash, expected_seq + 1
    return ""


def rekey(apps, schema_editor) -> None:
    AuditEvent = apps.get_model("grading", "AuditEvent")
    AuditChainHead = apps.get_model("grading", "AuditChainHead")
    rows = list(AuditEvent.objects.order_by("seq"))
    if not rows:
        return
    key = settings.ONFH_AUDIT_KEY.encode("utf-8")
    problem = _legacy_problem(rows)
    if problem and os.environ.get("ONFH_AUDIT_REKEY_BROKEN") != "1":
        raise RuntimeError(
            f"the existing (unkeyed) audit chain is broken: {problem}. Investigate first; "
            "set ONFH_AUDIT_REKEY_BROKEN=1 to re-key it anyway (the break is recorded)."
        )
    legacy_head = rows[-1].hash
    prev = GENESIS
    for row in rows:
        new_hash = hmac.new(key, _canonical(row, prev), hashlib.sha256).hexdigest()
        AuditEvent.objects.filter(pk=row.pk).update(prev_hash=prev, hash=new_hash)
        prev = new_hash
    event = AuditEvent(
        seq=rows[-1].seq + 1,
        time=timezone.now(),
        actor=None,
        actor_username="",
        action="audit.rekey",
        object_type="audit",
        object_id="",
        study=None,
        before={"algorithm": "sha256", "head_hash": legacy_head},
        after={
            "algorithm": "hmac-sha256",
            "events": len(rows),
            "legacy_chain": problem or "intact",
        },
        reason="migration 0003: the audit chain is keyed with ONFH_AUDIT_KEY",
        client_address=None,
        prev_hash=prev,
    )
    event.hash = hmac.new(key, _canonical(event, prev), hashlib.sha256).hexdigest()
    event.save(force_insert=True)
    AuditChainHead.objects.update_or_create(pk=1, defaults={"seq": event.seq, "hash": event.hash})


class Migration(migrations.Migration):
    dependencies = [
        ("grading", "0002_study_list_indexes"),
    ]

    operations = [
        migrations.RunPython(rekey, migrations.RunPython.noop, elidable=False),
    ]
