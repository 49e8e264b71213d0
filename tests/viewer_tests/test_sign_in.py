"""Sign-in in a real browser: through the hospital's OpenID Connect provider (a real
provider process and its own login page) to the worklist, with the site and role its
groups map to; and a local account that enrols TOTP and signs in with a code."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from grading.management.commands._processes import free_port
from tests.grading_tests.accounts.totp import totp_code
from tests.peers.oidc import oidc_provider
from tests.viewer_tests.conftest import Portal, running_portal

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

USERS = [
    {
        "sub": "hosp-000123",
        "username": "rita.ortho",
        "password": "idp-pass-123",
        "email": "rita@hospital.example",
        "name": "Rita Ortho",
        "groups": ["radiology-onfh", "unrelated-group"],
    }
]


def _api(portal: Portal, method: str, path: str, body: Any = None, token: str = "") -> Any:
    request = urllib.request.Request(
        f"{portal.base_url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Token {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        return json.load(answer)


@pytest.fixture(scope="module")
def idp_portal() -> Iterator[tuple[Portal, Any]]:
    port = free_port()
    with oidc_provider(
        users=USERS, redirect_uris=[f"http://127.0.0.1:{port}/oidc/callback/"]
    ) as provider:
        with running_portal({"PORT": str(port), **provider.portal_env()}) as portal:
            # The demo site's administrator maps the provider's group to a role.
            token = _api(
                portal,
                "POST",
                "/api/auth/token/",
                {"username": "demo_admin", "password": portal.password},
            )["token"]
            site = _api(portal, "GET", "/api/me/", token=token)["sites"][0]
            _api(
                portal,
                "PUT",
                f"/api/sites/{site['id']}/sign-in/",
                {
                    "require_totp": False,
                    "idp_groups": [{"group": "radiology-onfh", "role": "radiologist"}],
                },
                token=token,
            )
            yield portal, site


def test_sign_in_through_the_identity_provider(idp_portal, browser):
    portal, site = idp_portal
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{portal.base_url}/login/")
    page.click("#oidc-login")
    # The provider's own login page, on the provider's port.
    page.wait_for_selector("#idp-login")
    assert not page.url.startswith(portal.base_url)
    page.fill("#idp-user", "rita.ortho")
    page.fill("#idp-password", "wrong")
    page.click("#idp-submit")
    page.wait_for_selector("#idp-error")
    page.fill("#idp-user", "rita.ortho")
    page.fill("#idp-password", "idp-pass-123")
    page.click("#idp-submit")
    page.wait_for_url(f"{portal.base_url}/")
    assert page.locator("#username").inner_text().strip() == "rita.ortho"
    me = page.evaluate("fetch('/api/me/').then(r => r.json())")
    assert me["sites"] == [{"id": site["id"], "name": site["name"], "role": "radiologist"}]
    page.screenshot(path=str(portal.var_dir / "oidc-worklist.png"))
    context.close()


def test_local_account_enrols_totp_and_signs_in_with_a_code(idp_portal, browser):
    portal, _ = idp_portal
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{portal.base_url}/login/")
    page.fill("#id_username", "demo_teacher")
    page.fill("#id_password", portal.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{portal.base_url}/")
    page.click("#username")  # -> the authenticator page
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret)
    page.fill("#id_code", totp_code(secret))
    page.click("#totp-form button[type=submit]")
    page.wait_for_selector("#totp-done")
    context.close()

    # A fresh browser: password, then the code the test computes.
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{portal.base_url}/login/")
    page.fill("#id_username", "demo_teacher")
    page.fill("#id_password", portal.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{portal.base_url}/login/second-factor/")
    code = totp_code(secret, at=__import__("time").time() + 30)  # the next step: not reused
    page.fill("#id_code", code)
    page.click("#totp-form button[type=submit]")
    page.wait_for_url(f"{portal.base_url}/")
    assert page.locator("#username").inner_text().strip() == "demo_teacher"
    context.close()
