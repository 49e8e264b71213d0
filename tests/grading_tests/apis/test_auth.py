"""Token and session authentication, ``GET /api/me/``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from grading.models import ApiToken
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    user = UserFactory(username="alice")
    MembershipFactory(user=user, site=SiteFactory(name="A site"), role="radiologist")
    MembershipFactory(user=user, site=SiteFactory(name="B site"), role="student")
    return user


def test_token_for_good_credentials_then_token_auth_works(member):
    client = APIClient()
    answer = client.post("/api/auth/token/", {"username": "alice", "password": "pw"}, format="json")
    assert answer.status_code == 200
    assert set(answer.json()) == {"token", "expires"}
    token = answer.json()["token"]
    assert ApiToken.objects.get(user=member).prefix == token[:8]

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/me/")
    assert me.status_code == 200
    assert me.json() == {
        "username": "alice",
        "sites": [
            {
                "id": member.memberships.get(role="radiologist").site_id,
                "name": "A site",
                "role": "radiologist",
            },
            {
                "id": member.memberships.get(role="student").site_id,
                "name": "B site",
                "role": "student",
            },
        ],
    }


def test_each_login_makes_its_own_token_and_both_work(member):
    # (Tokens are stored as hashes, so an earlier key cannot be handed out again.)
    client = APIClient()
    first = client.post("/api/auth/token/", {"username": "alice", "password": "pw"}, format="json")
    second = client.post("/api/auth/token/", {"username": "alice", "password": "pw"})
    assert first.json()["token"] != second.json()["token"]
    for answer in (first, second):
        client.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
        assert client.get("/api/me/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "pw"},
        {"username": "alice"},
        {},
    ],
)
def test_bad_credentials_400(member, body):
    answer = APIClient().post("/api/auth/token/", body, format="json")
    assert answer.status_code == 400
    assert "token" not in answer.json()


def test_inactive_user_gets_no_token(member):
    member.is_active = False
    member.save()
    answer = APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw"})
    assert answer.status_code == 400


def test_anonymous_401_with_token_challenge():
    answer = APIClient().get("/api/me/")
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == "Token"


def test_wrong_token_401(member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/me/").status_code == 401


def test_session_auth_by_login(member):
    client = APIClient()
    assert client.post("/login/", {"username": "alice", "password": "pw"}).status_code == 302
    assert client.get("/api/me/").json()["username"] == "alice"


def test_session_writes_need_the_csrf_token(member):
    """A logged-in browser must send Django's CSRF token on writes (session auth);
    token-auth clients need none."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member)
    without = client.post("/api/uploads/", {}, format="multipart")
    assert without.status_code == 403
    assert "CSRF" in without.json()["detail"]

    client.get("/api/me/")  # any page; take the CSRF cookie as a browser would
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    with_token = client.post(
        "/api/uploads/", {}, format="multipart", HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret)
    )
    assert with_token.status_code == 400  # past CSRF and auth: no files sent


def test_token_login_needs_no_csrf(member):
    client = APIClient(enforce_csrf_checks=True)
    answer = client.post("/api/auth/token/", {"username": "alice", "password": "pw"})
    assert answer.status_code == 200
