"""Login throttling (django-axes): after the failure limit the right password is refused,
per account and per address, on the login page, the token API and the admin login;
after the cool-down it works again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.grading_tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return UserFactory(username="alice", is_staff=True)  # password "pw"


def _fail(n: int, post, path: str, username: str = "alice") -> None:
    for _ in range(n):
        answer = post(path, {"username": username, "password": "wrong"})
        assert answer.status_code in (200, 400, 429)


def test_login_page_refuses_the_right_password_after_five_failures(alice, settings):
    client = Client(REMOTE_ADDR="10.0.0.1")
    _fail(5, client.post, "/login/")
    answer = client.post("/login/", {"username": "alice", "password": "pw"})
    assert answer.status_code == 429
    assert b"Too many failed sign-ins" in answer.content
    assert "_auth_user_id" not in client.session


def test_token_api_locks_the_account_from_any_address(alice):
    _fail(5, APIClient(REMOTE_ADDR="10.0.0.1").post, "/api/auth/token/")
    # Another address, the right password: the account is locked.
    answer = APIClient(REMOTE_ADDR="10.0.0.2").post(
        "/api/auth/token/", {"username": "alice", "password": "pw"}, format="json"
    )
    assert answer.status_code == 429
    assert "token" not in answer.json()
    assert "Too many failed sign-ins" in answer.json()["detail"]


def test_one_address_guessing_many_accounts_is_locked_out(alice):
    client = Client(REMOTE_ADDR="10.0.0.3")
    for n in range(5):
        client.post("/login/", {"username": f"guess{n}", "password": "wrong"})
    answer = client.post("/login/", {"username": "alice", "password": "pw"})
    assert answer.status_code == 429
    # Alice from her own address is not locked.
    other = Client(REMOTE_ADDR="10.0.0.4")
    assert other.post("/login/", {"username": "alice", "password": "pw"}).status_code == 302


def test_admin_login_is_throttled_too(alice):
    client = Client(REMOTE_ADDR="10.0.0.5")
    _fail(5, client.post, "/admin/login/")
    answer = client.post("/admin/login/", {"username": "alice", "password": "pw"})
    assert answer.status_code == 429


def test_after_the_cool_down_the_right_password_works(alice):
    from axes.models import AccessAttempt

    client = Client(REMOTE_ADDR="10.0.0.6")
    _fail(5, client.post, "/login/")
    assert client.post("/login/", {"username": "alice", "password": "pw"}).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert client.post("/login/", {"username": "alice", "password": "pw"}).status_code == 302
