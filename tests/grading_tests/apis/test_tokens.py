"""API tokens (issue 13, item 16): they expire, die with a password change, and their
owner lists and revokes them, through the API and the "API tokens" page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from grading.models import ApiToken, AuditEvent
from tests.grading_tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _login(username: str, password: str = "pw") -> str:
    answer = APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["token"]


def _me(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/me/").status_code


def _as(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_login_token_works_for_scripts_and_its_key_is_stored_only_as_a_hash(settings) -> None:
    UserFactory(username="alice")
    answer = (
        APIClient()
        .post("/api/auth/token/", {"username": "alice", "password": "pw"}, format="json")
        .json()
    )
    key = answer["token"]
    assert _me(key) == 200
    token = ApiToken.objects.get()
    assert key not in str(list(ApiToken.objects.values_list()))
    expected = token.created + timedelta(days=settings.ONFH_API_TOKEN_TTL_DAYS)
    assert token.expires == expected
    assert answer["expires"].startswith(expected.isoformat()[:19].replace("+00:00", ""))
    assert AuditEvent.objects.filter(action="token.create", actor__username="alice").exists()


def test_a_token_stops_working_at_its_expiry() -> None:
    UserFactory(username="alice")
    key = _login("alice")
    ApiToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert _me(key) == 401
    assert _as(_login("alice")).get("/api/auth/tokens/").json()[1]["state"] == "expired"


def test_a_password_change_ends_every_token_of_the_user() -> None:
    user = UserFactory(username="alice")
    keys = [_login("alice"), _login("alice")]
    assert [_me(k) for k in keys] == [200, 200]
    user.set_password("a new long password 42")
    user.save()
    assert [_me(k) for k in keys] == [401, 401]
    fresh = _login("alice", "a new long password 42")
    assert _me(fresh) == 200
    states = [t["state"] for t in _as(fresh).get("/api/auth/tokens/").json()]
    assert states == ["active", "password changed", "password changed"]


def test_users_list_and_revoke_only_their_own_tokens() -> None:
    UserFactory(username="alice")
    UserFactory(username="bob")
    alice, bob = _login("alice"), _login("bob")
    made = _as(alice).post("/api/auth/tokens/", {"name": "nightly export"}, format="json")
    assert made.status_code == 201
    script_key = made.json()["token"]
    assert _me(script_key) == 200
    listing = _as(alice).get("/api/auth/tokens/").json()
    assert [t["name"] for t in listing] == ["nightly export", "api login"]
    assert all("token" not in t and "key_hash" not in t for t in listing)
    assert [t["prefix"] for t in listing] == [script_key[:8], alice[:8]]
    script_id = listing[0]["id"]
    # Bob can neither see nor revoke it.
    assert [t["name"] for t in _as(bob).get("/api/auth/tokens/").json()] == ["api login"]
    assert _as(bob).delete(f"/api/auth/tokens/{script_id}/").status_code == 404
    assert _me(script_key) == 200
    revoked = _as(alice).delete(f"/api/auth/tokens/{script_id}/")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert _me(script_key) == 401 and _me(alice) == 200
    assert AuditEvent.objects.filter(action="token.revoke", object_id=str(script_id)).exists()


def test_a_user_keeps_at_most_twenty_active_tokens() -> None:
    UserFactory(username="alice")
    keys = [_login("alice") for _ in range(22)]
    assert _me(keys[0]) == 401 and _me(keys[1]) == 401 and _me(keys[2]) == 200
    assert ApiToken.objects.filter(revoked__isnull=True).count() == 20


def test_an_older_unexpiring_token_is_adopted_with_an_expiry() -> None:
    from rest_framework.authtoken.models import Token

    user = UserFactory(username="alice")
    recent = Token.objects.create(user=user)
    assert _me(recent.key) == 200  # scripts keep working...
    assert not Token.objects.exists()
    token = ApiToken.objects.get(user=user)
    assert token.name == "older token" and token.created == recent.created
    old = Token.objects.create(user=user)
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=400))
    assert _me(old.key) == 401  # ...but not past its expiry


def test_the_tokens_page_makes_shows_once_and_revokes(settings) -> None:
    user = UserFactory(username="alice")
    other = UserFactory(username="bob")
    page = Client()
    page.force_login(user)
    html = page.get("/tokens/").content.decode()
    assert "No tokens yet. Make one above" in html and "API tokens" in html
    nameless = page.post("/tokens/", {"name": "  "})
    assert nameless.status_code == 400  # the error names the field
    assert "Name: give the token a name" in nameless.content.decode()
    made = page.post("/tokens/", {"name": "my notebook"}).content.decode()
    token = ApiToken.objects.get(user=user)
    key = made.split('id="token-key">')[1].split("<")[0]
    assert key.startswith(token.prefix) and _me(key) == 200
    again = page.get("/tokens/").content.decode()
    assert "my notebook" in again and key not in again  # the key is shown once
    from grading.services.tokens import api_token_create

    bobs, _ = api_token_create(user=other, name="bob's")
    assert page.post("/tokens/", {"revoke": bobs.pk}).status_code == 404
    page.post("/tokens/", {"revoke": token.pk})
    assert _me(key) == 401
    assert 'data-state="revoked"' in page.get("/tokens/").content.decode()
    assert page.post("/tokens/", {"name": ""}).status_code == 400
