"""The teaching pages in real Chromium: a student marks necrosis with the brush on the
slice viewer, answers, and sees the result with the overlays (pytest-django's live server,
the same headless Chromium as tests/viewer_tests)."""

from __future__ import annotations

import shutil
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


def _page_as(chromium: Any, live_server: Any, user: Any) -> Any:
    client = Client()
    client.force_login(user)
    # bypass_csp: wait_for_function evaluates its predicate in the page (no 'unsafe-eval')
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


# Whether the canvas shows a rendered slice: 256 wide and some non-black pixel.
DRAWN = """() => {
  const c = document.getElementById('slice-canvas');
  if (c.width !== 256) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) { if (d[i] > 0) return true; }
  return false;
}"""


def test_a_student_marks_answers_and_sees_the_reference(classroom, live_server, chromium):
    page = _page_as(chromium, live_server, classroom.users["alice"])
    page.goto(f"{live_server.url}/teaching/cases/{classroom.case.pk}/")
    page.wait_for_function("document.getElementById('slice-label').textContent.includes('/')")
    page.wait_for_function(DRAWN, timeout=60_000)
    page.check('input[name="tool"][value="brush"]')
    box = page.locator("#slice-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.45)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.45, steps=12)
    page.mouse.up()
    for hip in classroom.case.reference_hips:
        page.check(f'input[name="grade_{hip["side"]}"][value="{hip["grade"]}"]')
    page.click("#submit-answer")
    page.wait_for_url(f"{live_server.url}/teaching/attempts/*/")
    attempt = Attempt.objects.get()
    assert attempt.score == 1.0
    assert attempt.dice is not None
    assert AttemptMask.objects.filter(attempt=attempt, necrosis_pixels__gt=0).count() == 1
    page.wait_for_function(DRAWN, timeout=60_000)
    assert page.locator("#score").inner_text() == "1.00"
    assert page.errors == []
