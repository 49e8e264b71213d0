"""Patient share-link views (issue 13, item 15): rate-limited per address (429, also for
unknown tokens and 410s), and repeated views audited once per window, 410s included."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from grading.explanations.models import ShareLink
from grading.models import AuditEvent
from tests.grading_tests.apis.conftest import World
from tests.grading_tests.explanations.test_explanations_api import link, make

pytestmark = pytest.mark.django_db


def _views() -> list[tuple[str, str, str | None]]:
    return [
        (e.after["what"], e.after["outcome"], e.client_address)
        for e in AuditEvent.objects.filter(action="explanation.link_view").order_by("seq")
    ]


def test_repeated_views_are_audited_once_per_window(world: World, settings) -> None:
    settings.ONFH_PATIENT_LINK_RATE = "1000/m"
    created = link(world, make(world)["id"])
    patient, other = Client(REMOTE_ADDR="198.51.100.7"), Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        assert patient.post("/p/", {"token": created["token"]}).status_code == 200
    patient.post("/p/pdf/", {"token": created["token"]})
    patient.post("/p/pdf/", {"token": created["token"]})
    other.post("/p/", {"token": created["token"]})
    assert _views() == [
        ("page", "shown", "198.51.100.7"),
        ("pdf", "shown", "198.51.100.7"),
        ("page", "shown", "203.0.113.9"),
    ]
    # A 410 is audited once too, however often the revoked link is tried.
    world.client("clinician").post(f"/api/explanations/links/{created['id']}/revoke/")
    for _ in range(6):
        assert patient.post("/p/", {"token": created["token"]}).status_code == 410
    assert _views()[3:] == [("page", "revoked", "198.51.100.7")]
    # After the window, the next view is audited again.
    settings.ONFH_PATIENT_LINK_AUDIT_WINDOW_S = 0
    patient.post("/p/", {"token": created["token"]})
    assert _views()[4:] == [("page", "revoked", "198.51.100.7")]


def test_views_past_the_rate_get_429_and_no_audit(world: World, settings) -> None:
    settings.ONFH_PATIENT_LINK_RATE = "5/m"
    created = link(world, make(world)["id"])
    ShareLink.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    hammer = Client(REMOTE_ADDR="198.51.100.66")
    codes = [hammer.post("/p/", {"token": created["token"]}).status_code for _ in range(8)]
    assert codes == [410] * 5 + [429] * 3
    limited = hammer.post(
        "/p/pdf/", {"token": "not-a-real-token"}
    )  # guessing tokens counts as well
    assert limited.status_code == 429 and limited["Retry-After"] == "60"
    assert _views() == [("page", "expired", "198.51.100.66")]
    # Another address is not held back by this one.
    assert (
        Client(REMOTE_ADDR="203.0.113.10").post("/p/", {"token": created["token"]}).status_code
        == 410
    )
