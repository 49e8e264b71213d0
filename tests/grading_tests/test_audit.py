"""The audit trail: append-only, hash-chained, verified by ``manage.py verify_audit``."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from grading.models import AuditChainHead, AuditEvent, AuditImmutableError
from grading.services import audit_record, audit_verify
from tests.grading_tests.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def _events(n: int = 5) -> list[AuditEvent]:
    user = UserFactory()
    study = StudyFactory()
    return [
        audit_record(
            actor=user if i % 2 else None,
            action="test.event",
            object_type="study",
            object_id=study.pk,
            study=study,
            before={"i": i},
            after={"x": i * 0.1},
            reason=f"r{i}",
            client_address="192.0.2.7",
        )
        for i in range(n)
    ]


def test_chain_links_each_event_to_the_previous() -> None:
    events = _events(4)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[0].prev_hash == "0" * 64
    for prev, cur in zip(events, events[1:], strict=False):
        assert cur.prev_hash == prev.hash
    assert AuditChainHead.objects.get().hash == events[-1].hash
    assert audit_verify().ok
    call_command("verify_audit")


def test_orm_cannot_change_or_delete_events() -> None:
    event = _events(1)[0]
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditImmutableError):
        event.delete()
    event.reason = "changed"
    with pytest.raises(AuditImmutableError):
        event.save()


def _verify_fails(seq: int, words: str) -> None:
    report = audit_verify()
    assert not report.ok and report.first_bad_seq == seq and words in report.problem
    with pytest.raises(CommandError) as info:
        call_command("verify_audit")
    assert info.value.returncode == 1 and f"#{seq}" in str(info.value)


def test_verify_detects_a_changed_row() -> None:
    events = _events(5)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE grading_auditevent SET reason = 'forged' WHERE id = %s", [events[2].pk]
        )
    _verify_fails(3, "changed")


def test_verify_detects_a_changed_json_value() -> None:
    events = _events(5)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE grading_auditevent SET after = %s WHERE id = %s", ['{"x": 99}', events[1].pk]
        )
    _verify_fails(2, "changed")


def test_verify_detects_a_deleted_row() -> None:
    events = _events(5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM grading_auditevent WHERE id = %s", [events[2].pk])
    _verify_fails(3, "missing")


def test_verify_detects_deleted_newest_rows() -> None:
    events = _events(5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM grading_auditevent WHERE id = %s", [events[-1].pk])
    _verify_fails(5, "newest")


def test_verify_detects_a_rewritten_row_with_recomputed_hash() -> None:
    """Recomputing the changed row's own hash does not help: the next row's prev_hash."""
    events = _events(4)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.reason = "forged"
    new_hash = forged.compute_hash()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE grading_auditevent SET reason = 'forged', hash = %s WHERE id = %s",
            [new_hash, events[1].pk],
        )
    _verify_fails(3, "prev_hash")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain() -> None:
    study = StudyFactory()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(10):
                audit_record(
                    actor=None,
                    action="test.concurrent",
                    object_type="study",
                    object_id=study.pk,
                    study=study,
                    after={"k": k, "i": i},
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert AuditEvent.objects.count() == 40
    assert audit_verify().ok
