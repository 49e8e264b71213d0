"""Client IP addresses in the audit trail are for admins only (issue 13 item 17)."""

from __future__ import annotations

import pytest

from grading.models import AuditEvent, OutboxMessage
from grading.services.notify import study_audit_notify
from tests.grading_tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _addresses(world, client) -> set[str | None]:
    client.get(f"/api/studies/{world.study.pk}/", REMOTE_ADDR="10.0.0.1")
    answer = client.get(f"/api/studies/{world.study.pk}/audit/")
    assert answer.status_code == 200
    return {e["client_address"] for e in answer.json()}


@pytest.mark.parametrize("who", ["clinician", "radiologist", "teacher", "student"])
def test_members_who_are_not_admins_see_no_address(world, who) -> None:
    assert _addresses(world, world.client(who)) == {None}


def test_the_site_admin_and_a_superuser_see_addresses(world) -> None:
    assert "10.0.0.1" in _addresses(world, world.client("site_admin"))
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    world.users["root"] = root
    assert "127.0.0.1" in _addresses(world, world.client("root"))


def test_the_live_audit_message_carries_no_address(world) -> None:
    """The WebSocket goes to every member who may see the study, students included."""
    event = AuditEvent.objects.filter(study=world.study).exclude(client_address=None).first()
    assert event is not None and event.client_address
    study_audit_notify(event_id=event.pk)
    sent = [m.payload for m in OutboxMessage.objects.all() if m.payload["type"] == "study.audit"]
    assert sent and all(p["event"]["client_address"] is None for p in sent)
