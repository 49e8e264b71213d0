"""Sign-in in a real browser: through the hospital's OpenID Connect provider (a real
provider process and its own login page) to the worklist, with the site and role its
groups map to; and a local account that enrols TOTP and signs in with a code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from grading.management.commands._processes import free_port
from tests.grading_tests.accounts.totp import totp_code
from tests.peers.oidc import oidc_provider
from tests.viewer_tests.conftest import Portal, login, running_portal

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


@pytest.fixture(scope="module")
def idp_portal(browser) -> Iterator[tuple[Portal, Any]]:
    port = free_port()
    with oidc_provider(
        users=USERS, redirect_uris=[f"http://127.0.0.1:{port}/oidc/callback/"]
    ) as provider:
        with running_portal({"PORT": str(port), **provider.portal_env()}) as portal:
            # The demo site's administrator maps the provider's group to a role on the
            # site's sign-in settings page (the top bar's link).
            context = login(browser, portal, "demo_admin")
            page = context.new_page()
            page.goto(f"{portal.base_url}/")
            page.click("#sign-in-settings-link")
            page.wait_for_selector("#sign-in-form")
            site = page.evaluate("fetch('/api/me/').then(r => r.json())")["sites"][0]
            if page.locator("#sign-in-sites").count():  # an admin of several sites
                page.click(f"#sign-in-sites a[href$='/sites/{site['id']}/sign-in-settings/']")
            assert not page.is_checked("#id_require_totp")
            free_row = page.locator("#idp-groups input[type=text][value='']").first
            row_id = free_row.get_attribute("id").rsplit("_", 1)[1]
            free_row.fill("radiology-onfh")
            page.select_option(f"#id_role_{row_id}", "radiologist")
            page.click("#sign-in-save")
            page.wait_for_selector("#sign-in-saved")
            assert page.input_value("#idp-groups input[value='radiology-onfh']") == (
                "radiology-onfh"
            )
            context.close()
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
