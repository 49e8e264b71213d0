"""The portal's pages in a real browser (Debian's Chromium) against a live portal with a
real Celery worker: upload, live status, the Cornerstone3D viewer with overlays, scrolling,
grade revisions with the audit trail, mask editing, revert, and site isolation."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.viewer_tests.conftest import Bench, Portal, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ANALYSIS_TIMEOUT_MS = 420_000


class UploadedStudy(NamedTuple):
    study_id: int
    statuses_seen: list[str]
    page_survived: bool
    files: int


# --- helpers run in the page ------------------------------------------------------------

# The label-1 (or label-2) pixel deepest inside its region on the current slice, and
# where it is on the canvas.
DEEP_PIXEL_JS = """
(label) => {
  const v = window.onfhViewer.viewer;
  const i = v.sliceIndex;
  const data = v.sliceData(i);
  const size = v.sliceSize(i);
  if (!data || !size) return null;
  const { rows, columns } = size;
  let best = null, bestScore = -1;
  const r = 3;
  for (let y = r; y < rows - r; y++) {
    for (let x = r; x < columns - r; x++) {
      if (data[y * columns + x] !== label) continue;
      let score = 0;
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) {
          if (data[(y + dy) * columns + x + dx] === label) score++;
        }
      }
      if (score > bestScore) { bestScore = score; best = [x, y]; }
    }
  }
  if (!best) return null;
  const p = v.imagePointToCanvas(best[0] + 0.5, best[1] + 0.5);
  return { slice: i, column: best[0], row: best[1], score: bestScore, canvas: p };
}
"""

PIXEL_JS = """
([x, y]) => {
  const c = document.querySelector('canvas.cornerstone-canvas');
  const scale = c.width / c.clientWidth;
  const ctx = c.getContext('2d');
  const d = ctx.getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data;
  return [d[0], d[1], d[2], d[3]];
}
"""

DRAWN_JS = """
() => {
  const c = document.querySelector('canvas.cornerstone-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4 * 7) if (d[i] + d[i + 1] + d[i + 2] > 60) lit++;
  return lit / (d.length / 28);
}
"""

SCROLL_BENCH_JS = """
async () => {
  const v = window.onfhViewer.viewer;
  const el = v.element;
  const n = v.sliceCount;
  const step = async (i) => {
    const rendered = new Promise(
      (r) => el.addEventListener('CORNERSTONE_IMAGE_RENDERED', r, { once: true }),
    );
    const t0 = performance.now();
    await v.scrollTo(i);
    await rendered;
    return performance.now() - t0;
  };
  await step(0);
  const times = [];
  for (let i = 1; i < n; i++) times.push(await step(i));
  for (let i = n - 2; i >= 0; i--) times.push(await step(i));
  return times;
}
"""


GL_RENDERER_JS = """
() => {
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return 'none';
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
}
"""


def _wait_ready(page: Any) -> None:
    page.wait_for_function("document.body.dataset.viewerReady === 'true'", timeout=60_000)


def _open_study(context: Any, portal: Portal, study_id: int) -> Any:
    page = context.new_page()
    page.goto(f"{portal.base_url}/studies/{study_id}/")
    _wait_ready(page)
    return page


def _hip_texts(page: Any) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.hip-card')].map(
            (c) => [c.dataset.side, c.querySelector('.slice-proportion').textContent]))"""
    )


def _card_js(side: str, selector: str) -> str:
    """JavaScript for an element of one hip's card."""
    return f"document.querySelector(\".hip-card[data-side='{side}'] {selector}\")"


def _write_phantom(folder: Path) -> list[Path]:
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    ph = make_bilateral_series(
        4242,
        n_slices=20,
        matrix=(256, 256),
        pixel_spacing_mm=1.5,
        slice_thickness_mm=4.0,
        necrosis={"right": "severe", "left": "moderate"},
    )
    return write_mr_series(
        ph.images,
        folder,
        pixel_spacing_mm=ph.pixel_spacing_mm,
        slice_thickness_mm=ph.slice_thickness_mm,
        spacing_between_slices_mm=ph.spacing_between_slices_mm,
        image_orientation=ph.image_orientation,
        first_position=ph.first_position,
        patient_name="BROWSER^TEST",
        patient_id="BROWSER-001",
        study_date="20240214",
    )


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(browser: Any, portal: Portal) -> Any:
    context = login(browser, portal, "demo")
    yield context
    context.close()


@pytest.fixture(scope="module")
def uploaded(demo: Any, portal: Portal, tmp_path_factory: pytest.TempPathFactory) -> UploadedStudy:
    """Upload a phantom study through the upload page while the worklist is open in another
    tab, and follow its status there over the WebSocket (the worklist is never reloaded)."""
    files = _write_phantom(tmp_path_factory.mktemp("phantom"))
    worklist = demo.new_page()
    worklist.goto(f"{portal.base_url}/")
    worklist.wait_for_function("document.getElementById('socket-state').dataset.state === 'open'")
    worklist.evaluate(
        """() => {
          window.__sameDocument = 'yes';
          window.__statuses = [];
          const seen = (el) => {
            const s = el.dataset.status;
            const id = el.closest('tr')?.dataset.studyId;
            if (s && id) window.__statuses.push(id + ':' + s);
          };
          new MutationObserver((records) => {
            for (const r of records) {
              const targets = r.type === 'attributes' ? [r.target] : [...r.addedNodes];
              for (const t of targets) if (t.nodeType === 1) {
                if (t.matches('.status')) seen(t);
                t.querySelectorAll?.('.status').forEach(seen);
              }
            }
          }).observe(document.getElementById('worklist-body'), {
            subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'],
          });
        }"""
    )
    upload = demo.new_page()
    upload.goto(f"{portal.base_url}/upload/")
    upload.set_input_files("#file-input", [str(f) for f in files])
    assert upload.locator("#file-list li").count() == len(files)
    upload.click("#start-upload")
    link = upload.wait_for_selector("#upload-summary a[href^='/studies/']", timeout=120_000)
    study_id = int(link.get_attribute("href").strip("/").split("/")[-1])
    assert upload.locator("#file-list li.ok").count() == len(files)
    assert all(
        v == 1
        for v in upload.eval_on_selector_all("#file-list progress", "els => els.map(e => e.value)")
    )
    upload.close()

    row = f"tr[data-study-id='{study_id}']"
    worklist.wait_for_selector(
        f"{row} .status[data-status='done'], {row} .status[data-status='failed']",
        timeout=ANALYSIS_TIMEOUT_MS,
    )
    final = worklist.get_attribute(f"{row} .status", "data-status")
    if final == "failed":
        detail = worklist.request.get(f"{portal.base_url}/api/studies/{study_id}/").json()
        pytest.fail(f"the analysis of the uploaded study failed: {detail.get('error')}")
    statuses = [
        s.split(":", 1)[1]
        for s in worklist.evaluate("window.__statuses")
        if s.startswith(f"{study_id}:")
    ]
    survived = worklist.evaluate("window.__sameDocument") == "yes"
    worklist.close()
    return UploadedStudy(study_id, statuses, survived, len(files))


# --- tests ---------------------------------------------------------------------------------


def test_login_rejects_a_wrong_password(browser: Any, portal: Portal) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{portal.base_url}/")
    assert "/login/" in page.url
    assert "not a medical device" in page.inner_text("footer")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "wrong-password")
    page.click("#login-form button[type=submit]")
    assert page.locator(".form-error").is_visible()
    context.close()


def test_upload_then_status_changes_live_on_the_worklist(uploaded: UploadedStudy) -> None:
    assert uploaded.page_survived, "the worklist page was reloaded"
    assert uploaded.statuses_seen, "no status was shown for the uploaded study"
    assert uploaded.statuses_seen[-1] == "done"
    # The row showed the study before it was done, then changed without a reload.
    assert any(s in ("queued", "running") for s in uploaded.statuses_seen), uploaded.statuses_seen


def test_worklist_shows_grades_and_sorts(
    demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    page = demo.new_page()
    page.goto(f"{portal.base_url}/")
    row = page.wait_for_selector(f"tr[data-study-id='{uploaded.study_id}']")
    assert "BROWSER" in row.inner_text()
    ai = row.query_selector(".ai-grade")
    assert ai is not None and ai.inner_text() in {"None", "Mild", "Moderate", "Severe"}
    assert "grade-" in (ai.get_attribute("class") or "")
    page.click("th[data-sort='patient']")
    assert page.get_attribute("th[data-sort='patient']", "aria-sort") == "ascending"
    page.select_option("select[name='status']", "failed")
    page.wait_for_function(f"!document.querySelector(\"tr[data-study-id='{uploaded.study_id}']\")")
    page.close()


def test_viewer_draws_image_and_overlays_fast(
    demo: Any, portal: Portal, uploaded: UploadedStudy, bench: Bench
) -> None:
    first_image: list[float] = []
    for _ in range(3):
        page = _open_study(demo, portal, uploaded.study_id)
        first_image.append(page.evaluate("window.onfhPerf['viewer:first-image']"))
        perf = page.evaluate("window.onfhPerf")
        if len(first_image) < 3:
            page.close()
    bench.record("first_image_ms", [round(t) for t in first_image])
    bench.record("overlays_ms", round(perf["viewer:overlays"]))
    # The target (first image of the 20-slice series within 2 s of opening the page) is a
    # benchmark figure, recorded above for docs/benchmarks.md, not a timed test: the shared
    # 2-core machine's load decides it. This bound only catches a viewer that hangs.
    assert statistics.median(first_image) < 10_000, first_image

    assert page.evaluate(DRAWN_JS) > 0.05, "the image is not drawn"
    head = page.evaluate(DEEP_PIXEL_JS, 1)
    assert head is not None, "no femoral head in the label map of the opening slice"
    with_overlay = page.evaluate(PIXEL_JS, head["canvas"])
    page.uncheck("#show-head")
    page.wait_for_timeout(300)
    without = page.evaluate(PIXEL_JS, head["canvas"])
    page.check("#show-head")
    page.wait_for_timeout(300)
    r, g, b, _ = with_overlay
    # The green head colour is blended over the grey image at the femoral head.
    assert g - r > 25 and g - b > 10, (with_overlay, without)
    assert abs(without[0] - without[1]) < 12, without

    necrosis = page.evaluate(DEEP_PIXEL_JS, 2)
    if necrosis is not None and necrosis["score"] >= 9:
        r, g, b, _ = page.evaluate(PIXEL_JS, necrosis["canvas"])
        assert r - g > 25, (r, g, b)
    page.close()


def test_viewer_works_under_the_content_security_policy(
    browser: Any, demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    """Cornerstone decodes in workers and compiles WebAssembly codecs: the policy allows
    exactly that ('wasm-unsafe-eval', worker-src blob:), and nothing on the pages is
    refused. This context keeps the policy (the others bypass it for wait_for_function),
    so it waits by polling from the test instead."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_cookies(demo.cookies())
    refused: list[str] = []
    context.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page = context.new_page()
    answer = page.goto(f"{portal.base_url}/studies/{uploaded.study_id}/")
    assert "'wasm-unsafe-eval'" in answer.headers["content-security-policy"]
    deadline = time.monotonic() + 60
    while page.evaluate("document.body.dataset.viewerReady") != "true":
        assert time.monotonic() < deadline, "the viewer did not get ready under the CSP"
        time.sleep(0.2)
    assert page.evaluate(DRAWN_JS) > 0.05, "the image is not drawn under the CSP"
    page.goto(f"{portal.base_url}/")  # the worklist and its live badge script (nonce)
    page.wait_for_selector("#worklist-body tr")
    context.close()
    assert refused == []


def test_scroll_changes_slice_and_proportion(
    demo: Any, portal: Portal, uploaded: UploadedStudy, bench: Bench
) -> None:
    page = _open_study(demo, portal, uploaded.study_id)
    page.click("#viewport")
    page.keyboard.press("Home")
    page.wait_for_function("window.onfhViewer.viewer.sliceIndex === 0")
    seen_text = set()
    seen_index = []
    for _ in range(19):
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(60)
        seen_index.append(page.evaluate("window.onfhViewer.viewer.sliceIndex"))
        seen_text.add(tuple(sorted(_hip_texts(page).items())))
        assert page.inner_text("#slice-index").startswith(f"{seen_index[-1] + 1} /")
    assert seen_index == list(range(1, 20))
    assert len(seen_text) > 3, "the per-slice proportions did not change while scrolling"

    # The chart marks the current slice, and a click on it jumps there. The chart's x axis
    # runs from the left margin (40 of 320 viewBox units) to the right margin (310): slice 10
    # of 20 lies at 40 + 10 / 19 * 270.
    # The side panel scrolls: bring the chart into view (taller hip cards push it down).
    page.locator("#chart svg").scroll_into_view_if_needed()
    box = page.locator("#chart svg").bounding_box()
    x_of_slice_10 = (40 + 10 / 19 * 270) / 320
    page.mouse.click(box["x"] + box["width"] * x_of_slice_10, box["y"] + box["height"] * 0.5)
    page.wait_for_function("window.onfhViewer.viewer.sliceIndex === 10")
    assert page.inner_text("#slice-index").startswith("11 /")
    # the engine's uncertainty: per slice (slice 11 shows both heads), per hip on the card
    slice_interval = page.evaluate(f"{_card_js('right', '.slice-interval')}?.textContent")
    assert slice_interval and slice_interval.startswith("85 %: "), slice_interval
    for side in ("right", "left"):
        interval = page.evaluate(f"{_card_js(side, '.proportion-interval')}?.textContent")
        odds = page.evaluate(f"{_card_js(side, '.grade-probabilities')}?.textContent")
        assert interval and interval.endswith(" %") and "–" in interval, interval
        assert odds and odds.startswith("Grade probability: ") and " %" in odds, odds

    times = page.evaluate(SCROLL_BENCH_JS)
    bench.record(
        "scroll_step_ms",
        {
            "steps": len(times),
            "median": round(statistics.median(times), 1),
            "p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 1),
            "max": round(max(times), 1),
        },
    )
    # On a software WebGL (SwiftShader on machines without a GPU) the viewer uses
    # Cornerstone's CPU rendering ('cpu'); with a real GPU, WebGL ('gpu').
    renderer = page.evaluate(GL_RENDERER_JS)
    software = any(w in renderer.lower() for w in ("swiftshader", "llvmpipe", "software"))
    render_path = page.evaluate("document.body.dataset.renderPath")
    bench.record("webgl_renderer", renderer)
    bench.record("software_webgl", software)
    bench.record("render_path", render_path)
    assert render_path == ("cpu" if software else "gpu"), (renderer, render_path)
    # The figures go to docs/benchmarks.md; the bounds here only catch a stalled viewer
    # (a step that never finishes), not a slow machine.
    assert statistics.median(times) < 5_000, times
    assert max(times) < 20_000, times
    page.close()


def test_window_level_zoom_pan_wheel_and_the_overlay_follows(
    demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    """The mouse tools on whichever rendering path this machine gets, and the viewer's own
    overlay staying on the femoral head when the image is zoomed and moved."""
    page = _open_study(demo, portal, uploaded.study_id)
    box = page.locator("#viewport").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    wl_before = page.inner_text("#ov-bl").split("\n")[0]
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 40, steps=5)
    page.mouse.up()
    page.wait_for_function(
        f"!document.getElementById('ov-bl').textContent.startsWith({wl_before!r})"
    )
    # Right drag zooms, middle drag pans (whatever the left button does).
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx, cy + 60, steps=5)
    page.mouse.up(button="right")
    page.wait_for_function("!/Zoom 100 %/.test(document.getElementById('ov-bl').textContent)")
    centre = page.evaluate("window.onfhViewer.viewer.imagePointToCanvas(128, 128)")
    page.mouse.move(cx, cy)
    page.mouse.down(button="middle")
    page.mouse.move(cx + 60, cy + 30, steps=5)
    page.mouse.up(button="middle")
    page.wait_for_timeout(200)
    moved = page.evaluate("window.onfhViewer.viewer.imagePointToCanvas(128, 128)")
    shift = (moved[0] - centre[0], moved[1] - centre[1])
    assert abs(shift[0] - 60) < 3 and abs(shift[1] - 30) < 3, (centre, moved)
    head = page.evaluate(DEEP_PIXEL_JS, 1)
    assert head is not None
    r, g, b, _ = page.evaluate(PIXEL_JS, head["canvas"])
    assert g - r > 25 and g - b > 10, (r, g, b)
    index = page.evaluate("window.onfhViewer.viewer.sliceIndex")
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, 120)
    page.wait_for_function(f"window.onfhViewer.viewer.sliceIndex !== {index}")
    page.keyboard.press("r")
    page.wait_for_function("/Zoom 100 %/.test(document.getElementById('ov-bl').textContent)")
    page.close()


def test_grade_change_needs_a_reason_and_shows_in_the_audit_trail(
    demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    page = _open_study(demo, portal, uploaded.study_id)
    page.wait_for_selector("#audit li.audit-event")
    card = page.locator(".hip-card").first
    side = card.get_attribute("data-side")
    current = card.locator(".current-grade").inner_text()
    new_grade = "severe" if current != "Severe" else "moderate"
    card.locator("summary", has_text="Change grade").click()
    card.locator("select[name='grade']").select_option(new_grade)
    # No reason: refused in the page, nothing sent.
    card.locator(".grade-form textarea").fill("   ")
    card.locator(".grade-form button[type=submit]").click()
    assert card.locator(".form-error").inner_text() == "A reason is required."
    reason = f"Browser test: second reader call {time.time():.0f}"
    card.locator(".grade-form textarea").fill(reason)
    card.locator(".grade-form button[type=submit]").click()
    page.wait_for_selector(f"#audit li.audit-event:has-text('{reason}')", timeout=20_000)
    page.wait_for_function(
        f"{_card_js(side, '.current-grade')}.textContent === '{new_grade.capitalize()}'"
    )
    # The AI grade stays beside the revised one.
    assert page.locator(f".hip-card[data-side='{side}'] .ai-grade").inner_text() in {
        "None",
        "Mild",
        "Moderate",
        "Severe",
    }
    page.close()


def test_brush_edit_changes_proportion_after_save_and_revert_restores(
    demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    page = _open_study(demo, portal, uploaded.study_id)
    head = page.evaluate(DEEP_PIXEL_JS, 1)
    assert head is not None
    side = page.evaluate(
        """([col]) => {
          const v = window.onfhViewer.viewer;
          return col < v.sliceSize(v.sliceIndex).columns / 2 ? 'right' : 'left';
        }""",
        [head["column"]],
    )
    before = _hip_texts(page)[side]
    page.keyboard.press("b")
    page.keyboard.press("n")
    assert page.locator("input[name='edit-label'][value='2']").is_checked()
    box = page.locator("#viewport").bounding_box()
    x, y = box["x"] + head["canvas"][0], box["y"] + head["canvas"][1]
    page.mouse.move(x, y)
    page.mouse.down()
    for dx, dy in [(4, 0), (4, 4), (0, 4), (-4, 4), (-4, 0), (-4, -4), (0, -4), (4, -4), (0, 0)]:
        page.mouse.move(x + dx, y + dy, steps=2)
    page.mouse.up()
    page.wait_for_function("!document.getElementById('save-mask').disabled")
    assert page.locator("#edit-state").inner_text() == "Unsaved mask edits"
    # Undo and redo the stroke.
    page.keyboard.press("Control+z")
    page.wait_for_function("document.getElementById('redo').disabled === false")
    page.keyboard.press("Control+y")
    page.wait_for_function("document.getElementById('undo').disabled === false")

    page.click("#save-mask")
    page.fill("#reason-input", "Browser test: necrosis extends further")
    page.click("#reason-confirm")
    page.wait_for_function(
        "document.getElementById('save-mask').textContent === 'Save mask'", timeout=30_000
    )
    page.wait_for_function(
        f"{_card_js(side, '.slice-proportion')}.textContent !== {before!r}",
        timeout=30_000,
    )
    after = _hip_texts(page)[side]
    assert float(after.split()[0]) > float(before.split()[0]), (before, after)
    page.wait_for_selector(
        "#audit li.audit-event:has-text('necrosis extends further')", timeout=20_000
    )
    assert page.locator("#edit-state").inner_text() == "Mask edited by a reader"

    page.click("#revert-mask")
    page.fill("#reason-input", "Browser test: back to the AI mask")
    page.click("#reason-confirm")
    page.wait_for_function(
        f"{_card_js(side, '.slice-proportion')}.textContent === {before!r}",
        timeout=30_000,
    )
    page.wait_for_selector("#audit li.audit-event:has-text('back to the AI mask')", timeout=20_000)
    assert page.locator("#edit-state").inner_text() == "AI mask"
    page.close()


def test_necrosis_painted_away_from_any_head_is_kept_as_painted(
    demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    """The brush paints necrosis anywhere (docs/teaching.md, "Where necrosis may be
    painted"), and on save the server stores the mask as painted: the page reloads what was
    stored and still shows every necrosis pixel the reader painted."""
    page = _open_study(demo, portal, uploaded.study_id)
    counts = "() => { const v = window.onfhViewer.viewer; return v.countsOnSlice(v.sliceIndex); }"
    before = page.evaluate(counts)
    # A point well below both heads, inside the image, with no head label around it.
    spot = page.evaluate(
        """() => {
          const v = window.onfhViewer.viewer;
          const { rows, columns } = v.sliceSize(v.sliceIndex);
          const data = v.sliceData(v.sliceIndex);
          const x = Math.round(columns / 2), y = Math.round(rows * 0.85);
          for (let dy = -8; dy <= 8; dy++) for (let dx = -8; dx <= 8; dx++)
            if (data[(y + dy) * columns + x + dx] !== 0) return null;
          return v.imagePointToCanvas(x + 0.5, y + 0.5);
        }"""
    )
    assert spot is not None, "no label-free spot below the heads"
    page.keyboard.press("b")
    page.keyboard.press("n")
    box = page.locator("#viewport").bounding_box()
    x, y = box["x"] + spot[0], box["y"] + spot[1]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 4, y, steps=2)
    page.mouse.up()
    page.wait_for_function("!document.getElementById('save-mask').disabled")
    painted = page.evaluate(counts)
    # Painted where no head was: the necrosis is shown (and counts as head) until saved.
    assert painted["necrosis"] > before["necrosis"]
    page.click("#save-mask")
    page.fill("#reason-input", "Browser test: necrosis away from the head")
    page.click("#reason-confirm")
    page.wait_for_selector(".toast:has-text('Mask saved')")
    page.wait_for_function(
        "document.getElementById('edit-state').textContent === 'Mask edited by a reader'"
    )
    assert page.evaluate(counts) == painted
    assert page.locator("#edit-state").inner_text() == "Mask edited by a reader"
    page.click("#revert-mask")
    page.fill("#reason-input", "Browser test: back to the AI mask")
    page.click("#reason-confirm")
    page.wait_for_function("document.getElementById('edit-state').textContent === 'AI mask'")
    page.close()


def test_help_overlay_lists_the_shortcuts(
    demo: Any, portal: Portal, uploaded: UploadedStudy
) -> None:
    page = _open_study(demo, portal, uploaded.study_id)
    page.keyboard.press("?")
    assert page.locator("#help-overlay").is_visible()
    text = page.inner_text("#help-overlay")
    for words in ("Next slice", "Window/level presets", "Brush", "Undo mask edit", "Reset view"):
        assert words in text
    page.keyboard.press("Escape")
    assert not page.locator("#help-overlay").is_visible()
    page.close()


def test_another_sites_user_gets_404(browser: Any, portal: Portal, uploaded: UploadedStudy) -> None:
    context = login(browser, portal, "second_clinician")
    page = context.new_page()
    response = page.goto(f"{portal.base_url}/studies/{uploaded.study_id}/")
    assert response is not None and response.status == 404
    assert "Not found" in page.inner_text("h1")
    api = page.request.get(f"{portal.base_url}/api/studies/{uploaded.study_id}/")
    assert api.status == 404
    page.goto(f"{portal.base_url}/")
    page.wait_for_function("document.getElementById('worklist-state').textContent === ''")
    assert page.locator(f"tr[data-study-id='{uploaded.study_id}']").count() == 0
    context.close()


def test_screenshots(
    browser: Any, portal: Portal, uploaded: UploadedStudy, screenshot_dir: Path | None
) -> None:
    if screenshot_dir is None:
        pytest.skip("set ONFH_SCREENSHOT_DIR to write screenshots")
    for width, height in ((1366, 768), (2560, 1440)):
        context = login(browser, portal, "demo", width=width, height=height)
        page = context.new_page()
        page.goto(f"{portal.base_url}/")
        page.wait_for_selector(f"tr[data-study-id='{uploaded.study_id}']")
        page.screenshot(path=str(screenshot_dir / f"worklist-{width}x{height}.png"))
        page.goto(f"{portal.base_url}/studies/{uploaded.study_id}/")
        _wait_ready(page)
        page.wait_for_timeout(500)
        page.screenshot(path=str(screenshot_dir / f"viewer-{width}x{height}.png"))
        context.close()
