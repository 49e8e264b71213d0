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


@pytest.mark.django_db(transaction=True)
def test_record_once_writes_exactly_one_event_for_concurrent_looks() -> None:
    """``audit_record_once`` checks and writes under the chain head's lock: eight
    simultaneous first looks of one person at one study give one event, not none and not
    several; another person's look is its own event."""
    from grading.services.audit import audit_record_once

    study = StudyFactory()
    user, other = UserFactory(), UserFactory()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def look(who) -> None:
        try:
            barrier.wait(timeout=30)
            audit_record_once(
                within_s=600,
                actor=who,
                action="study.view",
                object_type="study",
                object_id=study.pk,
                study=study,
            )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=look, args=(user,)) for _ in range(7)]
    threads.append(threading.Thread(target=look, args=(other,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    looks = AuditEvent.objects.filter(action="study.view")
    assert sorted(e.actor_id for e in looks) == sorted([user.pk, other.pk])
    assert audit_verify().ok


# --- the key, the checkpoints and the replay (issue 13, item 3) -----------------------------


def _rechain_from(seq: int, *, key: str | None) -> None:
    """What someone with write access to the database does: change event ``seq`` and
    recompute every hash from there on, unkeyed (sha256, as the chain once was) or with
    ``key``, and the head, so that the chain is consistent again."""
    import hashlib

    from grading.models.audit import audit_canonical_bytes, audit_hmac

    rows = list(AuditEvent.objects.order_by("seq"))
    prev = rows[seq - 2].hash if seq > 1 else "0" * 64
    with connection.cursor() as cursor:
        for row in rows[seq - 1 :]:
            if row.seq == seq:
                row.reason = "forged"
            row.prev_hash = prev
            fields = row.canonical_fields()
            row.hash = (
                hashlib.sha256(audit_canonical_bytes(fields)).hexdigest()
                if key is None
                else audit_hmac(fields, key=key)
            )
            cursor.execute(
                "UPDATE grading_auditevent SET reason = %s, prev_hash = %s, hash = %s "
                "WHERE id = %s",
                [row.reason, row.prev_hash, row.hash, row.pk],
            )
            prev = row.hash
        cursor.execute("UPDATE grading_auditchainhead SET hash = %s WHERE id = 1", [prev])


def test_a_chain_recomputed_without_the_key_is_reported() -> None:
    _events(5)
    _rechain_from(3, key=None)  # before the key, verify_audit called this intact
    _verify_fails(3, "changed")


def test_a_chain_recomputed_with_a_guessed_key_is_reported() -> None:
    _events(5)
    _rechain_from(3, key="not-the-key")
    _verify_fails(3, "changed")


def test_the_key_is_not_in_the_database(settings) -> None:
    events = _events(2)
    key = settings.ONFH_AUDIT_KEY
    assert len(key) >= 32
    dumped = " ".join(str(v) for v in AuditEvent.objects.values_list()) + str(
        list(AuditChainHead.objects.values_list())
    )
    assert key not in dumped
    settings.ONFH_AUDIT_KEY = "another key"
    assert events[0].compute_hash() != events[0].hash
    _verify_fails(1, "ONFH_AUDIT_KEY")


def _checkpoint_lines(settings) -> list[dict]:
    import json

    path = settings.ONFH_AUDIT_CHECKPOINT_FILE
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.django_db(transaction=True)
def test_checkpoints_are_written_every_n_events_to_an_owner_only_file(settings) -> None:
    settings.ONFH_AUDIT_CHECKPOINT_EVERY = 3
    settings.ONFH_AUDIT_CHECKPOINT_EVERY_S = 3600
    events = _events(7)
    lines = _checkpoint_lines(settings)
    assert [x["seq"] for x in lines] == [3, 6]
    assert [x["hash"] for x in lines] == [events[2].hash, events[5].hash]
    assert settings.ONFH_AUDIT_CHECKPOINT_FILE.stat().st_mode & 0o777 == 0o600
    call_command("audit_checkpoint")
    assert [x["seq"] for x in _checkpoint_lines(settings)] == [3, 6, 7]
    call_command("audit_checkpoint")  # nothing new: no line
    assert len(_checkpoint_lines(settings)) == 3
    report = audit_verify()
    assert report.ok and report.checkpoints == 3


def test_a_chain_rewritten_with_the_key_is_caught_by_a_checkpoint(settings) -> None:
    """Even someone holding the key cannot rewrite history that was anchored."""
    _events(5)
    call_command("audit_checkpoint")
    _rechain_from(3, key=settings.ONFH_AUDIT_KEY)
    _verify_fails(5, "checkpoint")


def test_deleted_newest_events_with_a_rewritten_head_are_caught_by_a_checkpoint() -> None:
    events = _events(5)
    call_command("audit_checkpoint")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM grading_auditevent WHERE seq > 3")
        cursor.execute(
            "UPDATE grading_auditchainhead SET seq = 3, hash = %s WHERE id = 1", [events[2].hash]
        )
    _verify_fails(4, "checkpoint")


def test_an_edited_checkpoint_line_is_reported(settings) -> None:
    _events(3)
    call_command("audit_checkpoint")
    path = settings.ONFH_AUDIT_CHECKPOINT_FILE
    path.write_text(path.read_text().replace('"seq": 3', '"seq": 2'))
    report = audit_verify()
    assert not report.ok and "not signed" in report.problem


# Replaying grades and masks: the rows beside the chain, changed in SQL.


@pytest.fixture
def graded(scenario, phantom_files):
    """An analysed study, a clinician's grade and a mask edit, all through the services."""
    import numpy as np

    from grading.models import HipResult, Instance
    from grading.services import grade_revision_create, labelmaps_save
    from tests.grading_tests.test_services import analysed_study

    study = analysed_study(scenario, phantom_files)
    instances = list(Instance.objects.order_by("position"))
    k = next(k for k in range(len(instances)) if (phantom_files.labels[k] == 1).any())
    labelmaps_save(
        user=scenario.clinician,
        series=instances[k].series,
        labelmaps={instances[k].sop_instance_uid: np.asarray(phantom_files.labels[k])},
        reason="same mask, saved again",
        client_address=None,
    )
    right = HipResult.objects.get(side="right")
    grade_revision_create(
        user=scenario.clinician,
        hip_result=right,
        grade="severe",
        reason="collapse on coronal",
        client_address=None,
    )
    call_command("verify_audit")  # all agrees before anyone touches a row
    return study


def _replay_fails(*words: str) -> None:
    from grading.services.audit_replay import audit_replay

    report = audit_replay()
    assert not report.ok, report
    text = str(report)
    assert all(w in text for w in words), text
    with pytest.raises(CommandError) as info:
        call_command("verify_audit")
    assert info.value.returncode == 1 and "DIFFER" in str(info.value)


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_replay_reports_a_hip_grade_changed_in_sql(graded) -> None:
    from grading.models import HipResult

    right = HipResult.objects.get(side="right")
    _sql("UPDATE grading_hipresult SET grade = 'mild' WHERE id = %s", [right.pk])
    _replay_fails(f"hip {right.pk}", "'mild'", "'severe'")


def test_replay_reports_a_study_grade_changed_in_sql(graded) -> None:
    _sql("UPDATE grading_study SET grade = 'none' WHERE id = %s", [graded.pk])
    _replay_fails(f"study {graded.pk}", "'none'")


def test_replay_reports_a_hip_and_its_study_rewritten_together(graded) -> None:
    from grading.models import HipResult

    right = HipResult.objects.get(side="right")
    _sql("UPDATE grading_hipresult SET grade = 'mild' WHERE id = %s", [right.pk])
    _sql("UPDATE grading_gradereivision SET grade = 'mild'".replace("reiv", "rev"), [])
    _sql("UPDATE grading_study SET grade = 'mild' WHERE id = %s", [graded.pk])
    _replay_fails(f"hip {right.pk}", "grade revisions ['mild']", f"study {graded.pk}")


def test_replay_reports_a_deleted_grade_revision(graded) -> None:
    _sql("DELETE FROM grading_graderevision", [])
    _replay_fails("grade revisions []")


def test_replay_reports_an_ai_grade_changed_in_sql(graded) -> None:
    from grading.models import HipResult

    left = HipResult.objects.get(side="left")
    _sql("UPDATE grading_hipresult SET ai_grade = 'severe' WHERE id = %s", [left.pk])
    _replay_fails(f"hip {left.pk}", "analysis.done")


def test_replay_reports_a_deleted_mask_version(graded) -> None:
    _sql("DELETE FROM grading_labelmap WHERE version = 2", [])
    _replay_fails("0 edited or reverted label-map versions stored, 1 in the audit trail")
