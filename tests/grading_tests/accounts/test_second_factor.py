"""TOTP second factor for local accounts: a site can require it; nobody is signed in
before the code; the token API asks for it too; a session from before the rule is ended."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from grading.accounts.services import site_sign_in_policy_set
from grading.models import AuditEvent
from tests.grading_tests.accounts.totp import totp_code
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_site_member():
    site = SiteFactory(name="Strict")
    user = UserFactory(username="bob")
    MembershipFactory(user=user, site=site, role="clinician")
    site_sign_in_policy_set(site=site, require_totp=True, actor=None)
    return user


def _secret(html: str) -> str:
    return re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)


def test_required_site_enrols_then_asks_for_the_code(strict_site_member):
    client = Client()
    answer = client.post("/login/", {"username": "bob", "password": "pw"})
    assert answer.status_code == 302 and answer["Location"] == "/login/second-factor/"
    assert "_auth_user_id" not in client.session  # not signed in yet
    assert client.get("/").status_code == 302  # the worklist still wants a login
    page = client.get("/login/second-factor/")
    secret = _secret(page.content.decode())
    assert b"<svg" in page.content  # the QR code
    wrong = client.post("/login/second-factor/", {"code": "000000"})
    assert wrong.status_code == 400
    assert "Code: that code is not right" in wrong.content.decode()  # names the field
    time.sleep(1.1)  # django-otp waits 1 s after a wrong code (then 2, 4, ...)
    answer = client.post("/login/second-factor/", {"code": totp_code(secret)})
    assert answer.status_code == 302
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="user.totp_enrol").exists()

    # Next sign-in: password, then a code (the same code is not accepted twice).
    other = Client()
    other.post("/login/", {"username": "bob", "password": "pw"})
    page = other.get("/login/second-factor/")
    assert b"totp-secret" not in page.content  # no new secret shown
    assert other.post("/login/second-factor/", {"code": totp_code(secret)}).status_code == 400
    assert "_auth_user_id" not in other.session


def test_without_a_rule_or_device_the_password_is_enough():
    UserFactory(username="carol")
    client = Client()
    assert client.post("/login/", {"username": "carol", "password": "pw"})["Location"] == "/"


def test_a_user_can_enrol_voluntarily_and_then_needs_the_code(db):
    user = UserFactory(username="dan")
    client = Client()
    client.force_login(user)
    secret = _secret(client.get("/account/two-factor/").content.decode())
    answer = client.post("/account/two-factor/", {"code": totp_code(secret)})
    assert b'id="totp-done"' in answer.content
    fresh = Client()
    answer = fresh.post("/login/", {"username": "dan", "password": "pw"})
    assert answer["Location"] == "/login/second-factor/"


def test_token_api_needs_the_code_too(strict_site_member):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=strict_site_member, confirmed=True)
    api = APIClient()
    answer = api.post("/api/auth/token/", {"username": "bob", "password": "pw"}, format="json")
    assert answer.status_code == 400 and "otp" in answer.json()
    secret = __import__("base64").b32encode(device.bin_key).decode().rstrip("=")
    answer = api.post(
        "/api/auth/token/",
        {"username": "bob", "password": "pw", "otp": totp_code(secret)},
        format="json",
    )
    assert answer.status_code == 200 and "token" in answer.json()
    # ... and the token (for scripts) then works without a code.
    api.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    assert api.get("/api/me/").status_code == 200


def test_a_session_from_before_the_rule_is_ended(db):
    site = SiteFactory(name="Later strict")
    user = UserFactory(username="erin")
    MembershipFactory(user=user, site=site, role="clinician")
    client = Client()
    assert client.post("/login/", {"username": "erin", "password": "pw"}).status_code == 302
    assert client.get("/").status_code == 200
    site_sign_in_policy_set(site=site, require_totp=True, actor=None)
    assert client.get("/").status_code == 302
    assert client.get("/api/me/").status_code in (401, 403)


def test_provider_sessions_are_left_to_the_providers_second_factor(strict_site_member, settings):
    from grading.accounts.oidc import BACKEND_PATH

    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, BACKEND_PATH]
    client = Client()
    client.force_login(strict_site_member, backend=BACKEND_PATH)
    assert client.get("/").status_code == 200
    local = Client()
    local.force_login(strict_site_member, backend="django.contrib.auth.backends.ModelBackend")
    assert local.get("/").status_code == 302  # a password session without the code
