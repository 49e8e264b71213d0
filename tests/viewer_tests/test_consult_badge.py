"""The consultant's worklist badge in real Chromium: a new second-opinion request shows
up live (pushed over ws/studies/ to the consultant's own group), without a reload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from tests.viewer_tests.conftest import ROOT, Portal, login

pytestmark = pytest.mark.browser


def _make_study(portal: Portal) -> int:
    """A study row at the demo site (no images needed to ask about it)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "onfh_site.settings",
        "ONFH_VAR_DIR": str(portal.var_dir),
    }
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ONFH_STORAGE"):
        env.pop(key, None)
    code = (
        "from grading.models import Site, Study\n"
        "s = Study.objects.create(site=Site.objects.get(code='demo'), "
        "study_instance_uid='1.2.826.0.1.3680043.10.99.1', status='done')\n"
        "print('STUDY', s.pk)\n"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    return int(next(line.split()[1] for line in lines if line.startswith("STUDY")))


def _api(portal: Portal, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(
        f"{portal.base_url}{path}", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - local test server
        return json.loads(answer.read())


def test_new_request_bumps_the_consultant_badge_live(browser: Any, portal: Portal) -> None:
    study_id = _make_study(portal)
    consultant = login(browser, portal, "second_clinician")
    page = consultant.new_page()
    page.goto(f"{portal.base_url}/")
    badge = page.locator("#consult-badge")
    assert badge.get_attribute("data-count") == "0"
    page.wait_for_selector("#consult-badge[data-live='open']", timeout=30_000)

    token = _api(portal, "/api/auth/token/", {"username": "demo", "password": portal.password})
    _api(
        portal,
        "/api/consults/",
        {"study_id": study_id, "consultant": "second_clinician", "question": "Severe?"},
        token["token"],
    )
    page.wait_for_selector("#consult-badge[data-count='1']", timeout=30_000)
    assert page.locator("#consult-count").inner_text() == "1"
    assert "demo" in page.locator("#consult-live").inner_text()
    # The list page and the study itself are open to the consultant now.
    page.click("#consult-badge")
    page.wait_for_selector("#asked-of-me a[href^='/consults/']")
    assert "Severe?" in page.locator("#asked-of-me").inner_text()
    consultant.close()
