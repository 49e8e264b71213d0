"""The teaching pages in real Chromium on the study page's Cornerstone3D viewer: a student
marks necrosis with its brush, answers, and sees the score and the reference and their
own marking toggled (pytest-django's live server, the same headless Chromium as
tests/viewer_tests; the viewer bundle built by `make install-frontend`)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from grading.teaching.models import Attempt, AttemptMask
from tests.viewer_tests.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM}"),
]


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads
    # are still plain synchronous calls (Django's documented switch for such callers).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _page_as(chromium: Any, live_server: Any, user: Any, *, bypass_csp: bool = True) -> Any:
    client = Client()
    client.force_login(user)
    # bypass_csp: wait_for_function evaluates its predicate in the page (no 'unsafe-eval')
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=bypass_csp)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


READY = "document.body.dataset.viewerReady === 'true'"

# Pixels of one overlay colour on the viewport's canvas (the viewer draws its overlays
# on Cornerstone's visible 2D canvas): red = reference necrosis, green = reference head,
# blue = the student's marking.
COLOURED = """(kind) => {
  const c = document.querySelector('#viewport canvas.cornerstone-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    if (kind === 'red' ? r > g + 60 && r > b + 60
        : kind === 'green' ? g > r + 50 && g > b + 30
        : b > r + 60 && b > g + 20) n++;
  }
  return n;
}"""

# Show the first slice whose current overlay has necrosis; its index.
TO_NECROSIS = """async () => {
  const v = window.onfhTeaching.viewer;
  for (let i = 0; i < v.sliceCount; i++) {
    if (v.countsOnSlice(i).necrosis > 0) { await v.scrollTo(i); return i; }
  }
  return -1;
}"""


# Show the first slice whose current overlay holds a value; its index.
TO_VALUE = """async (value) => {
  const v = window.onfhTeaching.viewer;
  for (let i = 0; i < v.sliceCount; i++) {
    const data = v.sliceData(i);
    if (data && data.includes(value)) { await v.scrollTo(i); return i; }
  }
  return -1;
}"""


def _wait_coloured(page: Any, kind: str) -> None:
    page.wait_for_function(f"({COLOURED})({kind!r}) > 20", timeout=30_000)


def test_a_student_marks_answers_and_sees_the_reference(classroom, live_server, chromium):
    page = _page_as(chromium, live_server, classroom.users["alice"])
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/teaching/cases/{classroom.case.pk}/")
    page.wait_for_function(READY, timeout=120_000)
    # The study page's viewer: its presets, tools and the brush, and no answer anywhere.
    assert page.locator("#wl-preset option").count() == 4
    assert page.locator("input[name='overlay-view']").count() == 0
    assert page.evaluate("window.onfhTeaching.views") == ["marking"]
    assert page.evaluate(f"({COLOURED})('red')") == 0
    assert page.evaluate(f"({COLOURED})('green')") == 0
    # Window/level presets and zoom work as on the study page.
    page.select_option("#wl-preset", "3")
    page.wait_for_function("document.getElementById('ov-bl').textContent.startsWith('W ')")
    # The study page's keys too (viewer-keys.ts): preset 2 by key shows in the menu.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("2")
    page.wait_for_function("document.getElementById('wl-preset').value === '1'")
    page.click("button[data-tool='brush']")
    assert (
        "active" in (page.locator("button[data-tool='brush']").get_attribute("class") or "").split()
    )
    # Mark necrosis across the middle of the image: there is no head label to paint in.
    box = page.locator("#viewport").bounding_box()
    y = box["y"] + box["height"] * 0.5
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=12)
    page.mouse.up()
    page.wait_for_function("window.onfhTeaching.marked().length === 1")
    _wait_coloured(page, "blue")
    assert page.locator("#edit-state").inner_text() == "Necrosis marked on 1 slice"
    for hip in classroom.case.reference_hips:
        page.check(f'input[name="grade_{hip["side"]}"][value="{hip["grade"]}"]')
    page.click("#submit-answer")
    page.wait_for_url(f"{live_server.url}/teaching/attempts/*/", timeout=60_000)
    before_submit = list(requested)
    attempt = Attempt.objects.get()
    assert attempt.score == 1.0
    assert attempt.dice is not None
    assert AttemptMask.objects.filter(attempt=attempt, necrosis_pixels__gt=0).count() == 1
    # Nothing of the answer was asked for before the attempt.
    assert not [u for u in before_submit if "reference" in u or "mask.png" in u]
    assert any("/api/teaching/images/" in u and "/dicom/" in u for u in before_submit)

    # The result: the score, then the reference and the marking, toggled on the same viewer.
    page.wait_for_function(READY, timeout=120_000)
    assert page.locator("#score").inner_text() == "1.00"
    assert "Necrosis Dice against the reference" in page.locator("#dice").inner_text()
    assert page.evaluate("window.onfhTeaching.view") == "reference"
    assert page.evaluate(TO_NECROSIS) >= 0
    _wait_coloured(page, "red")
    _wait_coloured(page, "green")
    page.check("input[name='overlay-view'][value='marking']")
    assert page.evaluate("window.onfhTeaching.view") == "marking"
    assert page.evaluate(TO_NECROSIS) >= 0
    _wait_coloured(page, "blue")
    assert page.evaluate(f"({COLOURED})('green')") == 0
    # Both on one overlay: the marking (outside the reference's necrosis: blue) beside
    # the reference's necrosis (red) and head (green).
    page.check("input[name='overlay-view'][value='compare']")
    assert page.evaluate(TO_VALUE, 3) >= 0
    _wait_coloured(page, "blue")
    assert page.evaluate(TO_NECROSIS) >= 0
    _wait_coloured(page, "red")
    _wait_coloured(page, "green")
    # The overlay controls of the study page hide it.
    page.uncheck("#show-necrosis")
    page.wait_for_function(f"({COLOURED})('red') === 0")
    assert page.errors == []


def _poll(page: Any, script: str, arg: Any = None, timeout: float = 120) -> None:
    """Wait for a page script to be true by polling from the test: under the portal's
    Content-Security-Policy wait_for_function cannot evaluate its predicate."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {script[:60]}"
        time.sleep(0.2)


def test_the_teacher_sees_the_reference_on_the_case_page_under_the_csp(
    classroom, live_server, chromium
):
    """The teacher's view of a case: the reference, read-only. This page keeps the
    Content-Security-Policy (the shared viewer's workers and WebAssembly codecs must run
    under it, as on the study page) and nothing is refused."""
    page = _page_as(chromium, live_server, classroom.users["teacher"], bypass_csp=False)
    refused: list[str] = []
    page.on(
        "console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None
    )
    answer = page.goto(f"{live_server.url}/teaching/cases/{classroom.case.pk}/")
    assert "'wasm-unsafe-eval'" in answer.headers["content-security-policy"]
    _poll(page, f"() => {READY}")
    assert page.evaluate("window.onfhTeaching.views") == ["reference"]
    assert page.locator("button[data-tool='brush']").count() == 0
    assert page.evaluate(TO_NECROSIS) >= 0
    _poll(page, f"(kind) => ({COLOURED})(kind) > 20", "red", timeout=30)
    assert page.errors == []
    assert refused == []
