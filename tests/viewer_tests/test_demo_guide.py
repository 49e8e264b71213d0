"""The first hour: after ``make run`` (the launcher with its default demo), each demo user
finds their use case ready in a real browser, and the guide's screenshots are taken from
these pages at 1366x768 and at a 390-pixel phone width (docs/screenshots/guide/, used by
docs/guide.md). Set ONFH_GUIDE_SCREENSHOTS=0 to check without rewriting the files."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.viewer_tests.conftest import Portal, login, running_portal

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots" / "guide"
SIZES = {"1366x768": (1366, 768), "390": (390, 844)}


@pytest.fixture(scope="module")
def demo_portal() -> Iterator[Portal]:
    with running_portal(launch_args=(), start_timeout=600) as live:
        yield live


def _shot(page, name: str) -> None:
    if os.environ.get("ONFH_GUIDE_SCREENSHOTS", "1") != "0":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _patient_link(portal: Portal) -> str:
    text = portal.log.read_text()
    return re.search(r"http://127\.0\.0\.1:\d+/p/#[\w-]+", text).group(0)


@pytest.mark.parametrize("size", list(SIZES))
def test_each_demo_user_finds_their_use_case(browser, demo_portal: Portal, size: str) -> None:
    width, height = SIZES[size]
    # The clinician: every worklist state, the failure in words, the flag.
    context = login(browser, demo_portal, "demo", width=width, height=height)
    page = context.new_page()
    page.goto(f"{demo_portal.base_url}/")
    page.wait_for_selector('tr[data-study-id] [data-status="failed"]')
    text = page.inner_text("body")
    for patient in ("DEMO-001", "DEMO-005", "DEMO-006", "DEMO-007", "DEMO-008"):
        assert patient in text
    assert "damaged in the portal's storage" in text
    assert page.locator(".flag-chip").count() >= 1
    _shot(page, f"worklist-{size}")
    page.goto(f"{demo_portal.base_url}/consults/")
    assert "Would you call the left hip severe" in page.inner_text("body")
    _shot(page, f"consults-{size}")
    context.close()

    # The second site's clinician: their own open request, and the one they answered.
    context = login(browser, demo_portal, "second_clinician", width=width, height=height)
    page = context.new_page()
    page.goto(f"{demo_portal.base_url}/consults/")
    assert "Is the left hip moderate or still mild" in page.inner_text("body")
    context.close()

    # The teacher: the collection of four cases and the class's results.
    context = login(browser, demo_portal, "demo_teacher", width=width, height=height)
    page = context.new_page()
    page.goto(f"{demo_portal.base_url}/teaching/")
    page.click("text=Demo collection: grading ONFH on T1")
    body = page.inner_text("body")
    assert "Case 4" in body and "demo_student" in body
    _shot(page, f"teaching-collection-{size}")
    page.click("#results-link")
    assert "demo_student" in page.inner_text("body")
    _shot(page, f"teaching-results-{size}")
    context.close()

    # The student: one case scored, one not yet answered.
    context = login(browser, demo_portal, "demo_student", width=width, height=height)
    page = context.new_page()
    page.goto(f"{demo_portal.base_url}/teaching/")
    page.click("text=Demo collection: grading ONFH on T1")
    body = page.inner_text("body")
    assert "not answered" in body
    _shot(page, f"teaching-student-{size}")
    # A case not yet tried, on the study page's viewer: no reference before an attempt.
    page.click("#cases tr:has-text('not answered') a")
    page.wait_for_selector("body[data-viewer-ready='true']", timeout=120_000)
    assert page.evaluate("window.onfhTeaching.views") == ["marking"]
    assert page.locator("#answer-form").is_visible()
    _shot(page, f"teaching-case-{size}")
    # The scored attempt: the score, and the reference and the marking on one overlay.
    page.go_back()
    page.click("#cases a[href*='/teaching/attempts/']")
    page.wait_for_selector("body[data-viewer-ready='true']", timeout=120_000)
    assert page.evaluate("window.onfhTeaching.views") == ["reference", "marking", "compare"]
    assert page.locator("#score").is_visible()
    page.check("input[name='overlay-view'][value='compare']")
    assert page.evaluate("window.onfhTeaching.view") == "compare"
    _shot(page, f"teaching-attempt-{size}")
    context.close()

    # The patient: the printed link opens the explanation without a login.
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(_patient_link(demo_portal))
    page.wait_for_selector("text=Your hip MRI, explained")
    _shot(page, f"patient-{size}")
    context.close()
