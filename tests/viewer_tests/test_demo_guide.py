"""The first hour: after ``make run`` (the launcher with its default demo), each demo user
finds their use case ready in a real browser, and the guide's screenshots are taken from
these pages at 1366x768 and at a 390-pixel phone width (docs/screenshots/guide/, used by
docs/guide.md): the clinician's steps and the site administrator's pages included.
Every page has its ``?`` overlay (a dialog with the page's shortcuts and a link to a
section of the guide that exists), and no page is wider than a 390-pixel phone.
Set ONFH_GUIDE_SCREENSHOTS=0 to check without rewriting the files."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from grading.management.commands.bench_startup import READY_RE
from tests.viewer_tests.conftest import Portal, login, running_portal
from tests.viewer_tests.test_viewer_pages import DEEP_PIXEL_JS

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots" / "guide"
SIZES = {"1366x768": (1366, 768), "390": (390, 844)}


@pytest.fixture(scope="module")
def demo_portal() -> Iterator[Portal]:
    with running_portal(launch_args=(), start_timeout=300) as live:
        # The portal serves at once; the use cases follow once the worker has analysed.
        deadline = time.monotonic() + 600
        while not READY_RE.search(live.log.read_text(errors="replace")):
            assert time.monotonic() < deadline, live.log.read_text()[-4000:]
            time.sleep(1)
        yield live


def _shot(page: Any, name: str) -> None:
    if os.environ.get("ONFH_GUIDE_SCREENSHOTS", "1") != "0":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _patient_link(portal: Portal) -> str:
    text = portal.log.read_text()
    return re.search(r"http://127\.0\.0\.1:\d+/p/#[\w-]+", text).group(0)


def _ids(portal: Portal) -> dict[str, int]:
    """Row ids of the demo's use cases, read from the portal's own database."""
    with sqlite3.connect(f"file:{portal.var_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:

        def one(sql: str) -> int:
            return int(db.execute(sql).fetchone()[0])

        return {
            "study": one("SELECT id FROM grading_study WHERE patient_id = 'DEMO-001'"),
            "second_study": one("SELECT id FROM grading_study WHERE patient_id = 'SECOND-001'"),
            "answered": one(
                "SELECT id FROM consults_secondopinionrequest WHERE status = 'answered'"
            ),
            "open": one("SELECT id FROM consults_secondopinionrequest WHERE status = 'open'"),
            "collection": one("SELECT id FROM teaching_collection"),
            "case": one("SELECT MAX(id) FROM teaching_case"),
            "attempt": one("SELECT id FROM teaching_attempt"),
        }


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


def test_clinician_and_site_admin_steps_for_the_guide(browser, demo_portal: Portal) -> None:
    """The guide's step pictures, each taken where a person would take the step."""
    ids = _ids(demo_portal)
    base = demo_portal.base_url
    context = login(browser, demo_portal, "demo")
    page = context.new_page()
    page.goto(f"{base}/upload/")
    page.wait_for_selector("#drop-zone")
    _shot(page, "upload-1366x768")

    # A worklist filtered to nothing says so, and how to get the studies back.
    page.goto(f"{base}/?search=NO-SUCH-PATIENT")
    empty = page.wait_for_selector("#worklist-body td.empty")
    assert "No studies match these filters" in empty.inner_text()
    page.click("#worklist-body td.empty button")
    page.wait_for_selector("tr[data-study-id]")

    page.goto(f"{base}/studies/{ids['study']}/")
    page.wait_for_function("document.body.dataset.viewerReady === 'true'", timeout=60_000)
    page.wait_for_selector(".hip-card")
    _shot(page, "viewer-1366x768")

    # Change a grade: the form asks for a reason (not sent here: the demo stays as it is).
    card = page.locator(".hip-card").first
    card.locator("summary", has_text="Change grade").click()
    card.locator("select[name='grade']").select_option("severe")
    card.locator(".grade-form textarea").fill("The lesion reaches the weight-bearing dome.")
    _shot(page, "grade-change-1366x768")
    card.locator("summary", has_text="Change grade").click()

    # Edit a mask: the brush on the necrosis label, one stroke, not saved.
    head = page.evaluate(DEEP_PIXEL_JS, 1)
    assert head is not None
    page.locator("#viewport").focus()
    page.keyboard.press("b")
    page.keyboard.press("n")
    box = page.locator("#viewport").bounding_box()
    x, y = box["x"] + head["canvas"][0], box["y"] + head["canvas"][1]
    page.mouse.move(x, y)
    page.mouse.down()
    for dx, dy in [(6, 0), (6, 6), (0, 6), (-6, 6), (-6, 0), (0, 0)]:
        page.mouse.move(x + dx, y + dy, steps=2)
    page.mouse.up()
    page.wait_for_function("!document.getElementById('save-mask').disabled")
    assert page.locator("#edit-state").inner_text() == "Unsaved mask edits"
    _shot(page, "mask-edit-1366x768")
    page.close()

    page = context.new_page()
    page.goto(f"{base}/consults/studies/{ids['study']}/new/")
    page.wait_for_selector("form")
    _shot(page, "consult-new-1366x768")
    page.goto(f"{base}/explanations/studies/{ids['study']}/")
    assert "DEMO-001" in page.inner_text("body") or page.locator("form").count()
    _shot(page, "patient-builder-1366x768")
    context.close()

    # The site administrator: members and roles, and a remote AE title added by the form.
    context = login(browser, demo_portal, "demo_admin")
    page = context.new_page()
    page.goto(f"{base}/admin/grading/membership/")
    body = page.inner_text("body")
    assert "demo_student" in body and "Student" in body
    _shot(page, "admin-members-1366x768")
    page.goto(f"{base}/admin/interop/remoteae/add/")
    page.fill("#id_ae_title", "DEMO_MR")
    page.select_option("#id_site", label="Demo Hospital")
    page.fill("#id_address", "127.0.0.1")
    page.fill("#id_description", "The demo's MR scanner")
    _shot(page, "admin-ae-title-1366x768")
    page.click("input[name='_save']")
    page.wait_for_url(f"{base}/admin/interop/remoteae/")
    assert "DEMO_MR" in page.inner_text("body")
    context.close()


def _pages(ids: dict[str, int]) -> list[tuple[str | None, str]]:
    """Every page of the portal, with whom to open it (None: no login)."""
    return [
        (None, "/login/"),
        (None, "/guide/"),
        ("demo", "/"),
        ("demo", "/upload/"),
        ("demo", f"/studies/{ids['study']}/"),
        ("demo", "/tokens/"),
        ("demo", "/account/two-factor/"),
        ("demo", "/consults/"),
        ("demo", f"/consults/{ids['answered']}/"),
        ("demo", f"/consults/studies/{ids['study']}/new/"),
        ("demo", f"/explanations/studies/{ids['study']}/"),
        ("second_clinician", f"/consults/{ids['open']}/"),
        ("demo_teacher", "/teaching/"),
        ("demo_teacher", f"/teaching/collections/{ids['collection']}/"),
        ("demo_teacher", f"/teaching/collections/{ids['collection']}/results/"),
        ("demo_student", f"/teaching/collections/{ids['collection']}/"),
        ("demo_student", f"/teaching/cases/{ids['case']}/"),
        ("demo_student", f"/teaching/attempts/{ids['attempt']}/"),
        ("demo_admin", "/sign-in-settings/"),
        ("demo_admin", "/admin/"),
        ("demo_admin", "/admin/grading/membership/"),
        ("demo_admin", "/admin/interop/remoteae/add/"),
    ]


def _contexts(browser: Any, portal: Portal, width: int, height: int) -> dict[str | None, Any]:
    contexts: dict[str | None, Any] = {
        None: browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    }
    for user in ("demo", "second_clinician", "demo_teacher", "demo_student", "demo_admin"):
        contexts[user] = login(browser, portal, user, width=width, height=height)
    return contexts


def test_every_page_has_a_help_overlay_linking_to_the_guide(browser, demo_portal: Portal) -> None:
    ids = _ids(demo_portal)
    contexts = _contexts(browser, demo_portal, 1366, 768)
    guide = contexts[None].new_page()
    guide.goto(f"{demo_portal.base_url}/guide/")
    anchors = set(guide.eval_on_selector_all("#guide [id]", "els => els.map(e => e.id)"))
    assert {"the-worklist", "read-the-viewer", "for-a-site-administrator"} <= anchors
    problems = []
    try:
        for user, path in _pages(ids):
            page = contexts[user].new_page()
            page.goto(f"{demo_portal.base_url}{path}")
            page.wait_for_function("document.documentElement.dataset.helpReady === 'true'")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("?")
            dialog = page.locator("#help-overlay")
            if not dialog.is_visible():
                problems.append(f"{path} ({user}): ? did not open the overlay")
                page.close()
                continue
            assert dialog.get_attribute("role") == "dialog"
            assert dialog.get_attribute("aria-modal") == "true"
            title = page.locator(f"#{dialog.get_attribute('aria-labelledby')}").inner_text()
            assert "keyboard shortcuts" in title, (path, title)
            assert page.locator("#help-table tr").count() >= 2, path
            # Focus is inside, and Tab keeps it there.
            inside = "document.getElementById('help-overlay').contains(document.activeElement)"
            assert page.evaluate(inside), path
            for _ in range(4):
                page.keyboard.press("Tab")
                assert page.evaluate(inside), f"{path}: Tab left the overlay"
            page.keyboard.press("Shift+Tab")
            assert page.evaluate(inside), f"{path}: Shift+Tab left the overlay"
            link = urlsplit(page.get_attribute("#help-guide-link", "href"))
            if link.path != "/guide/" or link.fragment not in anchors:
                problems.append(f"{path}: the guide link {link.geturl()} goes nowhere")
            if path.startswith("/studies/"):
                assert "Next slice" in dialog.inner_text()  # the viewer's own keys
                _shot(page, "help-overlay-1366x768")
            page.keyboard.press("Escape")
            if dialog.is_visible():
                problems.append(f"{path}: Esc did not close the overlay")
            page.close()
        # The ? button opens it too; its link leads to the section.
        page = contexts["demo"].new_page()
        page.goto(f"{demo_portal.base_url}/")
        page.wait_for_function("document.documentElement.dataset.helpReady === 'true'")
        page.click("#help-open")
        page.click("#help-guide-link")
        page.wait_for_url(f"{demo_portal.base_url}/guide/#the-worklist")
        assert page.locator("#the-worklist").is_visible()
    finally:
        for context in contexts.values():
            context.close()
    assert not problems, "\n".join(problems)


def test_no_page_is_wider_than_a_phone(browser, demo_portal: Portal) -> None:
    ids = _ids(demo_portal)
    contexts = _contexts(browser, demo_portal, 390, 844)
    too_wide = []
    try:
        for user, path in [*_pages(ids), (None, urlsplit(_patient_link(demo_portal)).path)]:
            page = contexts[user].new_page()
            url = _patient_link(demo_portal) if path == "/p/" else f"{demo_portal.base_url}{path}"
            page.goto(url)
            page.wait_for_load_state("load")
            if path.startswith("/studies/"):
                page.wait_for_function(
                    "document.body.dataset.viewerReady === 'true'", timeout=60_000
                )
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 390:
                wide = page.evaluate(
                    """() => [...document.querySelectorAll('body *')]
                      .filter(e => e.getBoundingClientRect().right > 391)
                      .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"""
                )
                too_wide.append(f"{path} ({user}): {width} px wide: {wide}")
            if path.startswith("/studies/"):
                _shot(page, "viewer-390")
            page.close()
    finally:
        for context in contexts.values():
            context.close()
    assert not too_wide, "\n".join(too_wide)
