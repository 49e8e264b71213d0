"""The audit chain's migrations for real, through ``manage.py migrate``: events written
unkeyed before 0003 are re-keyed (a broken old chain stops the migration), and on
PostgreSQL 0004 makes the database refuse UPDATE, DELETE and TRUNCATE of the audit table.

PostgreSQL is a peer CI starts (``.ci/run``): without it the PostgreSQL test fails.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from grading.management.commands._processes import Stack

pytestmark = [pytest.mark.production, pytest.mark.timeout(600)]

PG = ("127.0.0.1", 5432)

# Three events as the portal wrote them before the key: sha256 of the canonical JSON.
LEGACY_EVENTS = """
import hashlib
from django.utils import timezone
from grading.models import AuditChainHead, AuditEvent
from grading.models.audit import audit_canonical_bytes
prev = "0" * 64
for seq in (1, 2, 3):
    e = AuditEvent(seq=seq, time=timezone.now(), actor_username="old", action="grade.change",
                   object_type="hip_result", object_id=str(seq), after={"grade": "mild"},
                   reason="before the key", prev_hash=prev)
    e.hash = hashlib.sha256(audit_canonical_bytes(e.canonical_fields())).hexdigest()
    e.save(force_insert=True)
    prev = e.hash
AuditChainHead.objects.update_or_create(pk=1, defaults={"seq": 3, "hash": prev})
print("LEGACY_HEAD", prev)
"""


def _stack(tmp_path: Path, database_url: str | None = None) -> Stack:
    env = {"SECRET_KEY": "audit-migration-test-secret-key-0123456789-not-for-real-use"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return Stack(tmp_path / "var", env)


def _legacy_then_migrate(stack: Stack) -> str:
    stack.manage("migrate", "grading", "0002", "--noinput", "-v", "0")
    out = stack.manage("shell", "-c", LEGACY_EVENTS)
    legacy_head = out.split("LEGACY_HEAD")[1].split()[0]
    stack.manage("migrate", "--noinput", "-v", "0")
    return legacy_head


def _rekey_checked(stack: Stack, legacy_head: str) -> None:
    assert "intact: 4 events" in stack.manage("verify_audit")
    out = stack.manage(
        "shell",
        "-c",
        "from grading.models import AuditEvent\n"
        "e = AuditEvent.objects.get(seq=4)\n"
        "print(e.action, e.before['head_hash'], e.after['events'], e.after['legacy_chain'])",
    )
    assert out.strip().splitlines()[-1].split() == ["audit.rekey", legacy_head, "3", "intact"]


def test_unkeyed_events_are_rekeyed_by_the_migration(tmp_path) -> None:
    stack = _stack(tmp_path)
    legacy_head = _legacy_then_migrate(stack)
    _rekey_checked(stack, legacy_head)
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "var" / "audit_key").stat().st_mode & 0o777 == 0o600


def test_a_broken_unkeyed_chain_stops_the_migration(tmp_path) -> None:
    stack = _stack(tmp_path)
    stack.manage("migrate", "grading", "0002", "--noinput", "-v", "0")
    stack.manage(
        "shell",
        "-c",
        LEGACY_EVENTS + "from django.db import connection\n"
        "connection.cursor().execute(\"UPDATE grading_auditevent SET reason='x' WHERE seq=2\")\n",
    )
    with pytest.raises(RuntimeError, match="event #2 was changed"):
        stack.manage("migrate", "--noinput", "-v", "0")
    stack.env["ONFH_AUDIT_REKEY_BROKEN"] = "1"
    stack.manage("migrate", "--noinput", "-v", "0")
    out = stack.manage(
        "shell",
        "-c",
        "from grading.models import AuditEvent\nprint(AuditEvent.objects.get(seq=4).after)",
    )
    assert "event #2 was changed" in out
    assert "intact: 4 events" in stack.manage("verify_audit")


@pytest.fixture
def postgres_database():
    import psycopg

    try:
        admin = psycopg.connect(host=PG[0], port=PG[1], dbname="test", autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is a required peer (127.0.0.1:5432, database 'test'): {error}")
    name = f"onfh_audit_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_postgres_refuses_update_delete_and_truncate_of_audit_events(
    tmp_path, postgres_database
) -> None:
    import psycopg

    stack = _stack(tmp_path, f"postgres://{PG[0]}:{PG[1]}/{postgres_database}")
    legacy_head = _legacy_then_migrate(stack)  # re-keyed first, then the trigger
    _rekey_checked(stack, legacy_head)
    with psycopg.connect(host=PG[0], port=PG[1], dbname=postgres_database, autocommit=True) as conn:
        for statement in (
            "UPDATE grading_auditevent SET reason = 'forged' WHERE seq = 2",
            "DELETE FROM grading_auditevent WHERE seq = 4",
            "TRUNCATE grading_auditevent CASCADE",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM grading_auditevent").fetchone() == (4,)
    # Appending still works, through the portal's own service.
    stack.manage(
        "shell",
        "-c",
        "from grading.services import audit_record\n"
        "audit_record(actor=None, action='test.after', object_type='test')",
    )
    assert "intact: 5 events" in stack.manage("verify_audit")
