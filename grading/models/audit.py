"""The append-only audit trail, chained by hashes, and the outbox the worker talks through."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.db import models

from grading.models.studies import Study

GENESIS_HASH = "0" * 64


class AuditImmutableError(Exception):
    """An audit event cannot be changed or deleted."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditImmutableError("Audit events are append-only: no update.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("Audit events are append-only: no delete.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AuditImmutableError("Audit events are append-only: no update.")


class AuditEvent(models.Model):
    """One thing that happened. Write only through ``grading.services.audit.audit_record``.

    ``hash`` = HMAC-SHA256, keyed with ``settings.ONFH_AUDIT_KEY`` (never stored in the
    database), of the canonical JSON of the row's fields (``canonical_fields``) and
    ``prev_hash``, the hash of the event with ``seq - 1``: changing, deleting or
    inserting a row breaks the chain, which ``manage.py verify_audit`` walks, and
    without the key nobody can compute a new chain over rewritten rows.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    time = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50, db_index=True)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=64, blank=True)
    study = models.ForeignKey(
        Study, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["study", "seq"], name="audit_study_seq"),
            # audit_record_once's look-up on every study detail (the viewer polls it)
            models.Index(
                fields=["object_type", "object_id", "action", "time"], name="audit_object_time"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditImmutableError("Audit events are append-only: no update.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("Audit events are append-only: no delete.")

    def canonical_fields(self) -> dict[str, Any]:
        return {
            "seq": int(self.seq),
            "time": self.time.isoformat(timespec="microseconds"),
            "actor_id": self.actor_id,
            "actor_username": self.actor_username,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": str(self.object_id),
            "study_id": self.study_id,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "client_address": self.client_address,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self, key: str | None = None) -> str:
        return audit_hmac(self.canonical_fields(), key=key)


def audit_canonical_bytes(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def audit_hmac(fields: dict[str, Any], *, key: str | None = None) -> str:
    """HMAC-SHA256 of the canonical JSON of ``fields`` with the audit key (hex)."""
    secret = (key if key is not None else settings.ONFH_AUDIT_KEY).encode("utf-8")
    return hmac.new(secret, audit_canonical_bytes(fields), hashlib.sha256).hexdigest()


class AuditChainHead(models.Model):
    """One row (pk=1): the last event's seq and hash. Writers lock it, so the chain
    never forks; it also lets ``verify_audit`` notice that the newest rows went missing."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_head_singleton"),
        ]

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class OutboxMessage(models.Model):
    """A Channels group message written by a process that cannot reach the channel layer
    (the worker, in the embedded mode); the ASGI process relays and later deletes it."""

    group = models.CharField(max_length=100)
    payload = models.JSONField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"outbox {self.pk} -> {self.group}"
