"""In a real browser on the live embedded portal (issue 13 item 1): a clinician grades a
hip, late slices of the series arrive, the real worker analyses the series again, and
the clinician's grade stays while the viewer (live, without a reload) and the worklist
say "AI changed since your review"."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.viewer_tests.conftest import Portal, login

ANALYSIS_TIMEOUT_S = 420


def _phantom(folder: Path) -> list[Path]:
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    ph = make_bilateral_series(
        777, n_slices=16, matrix=(256, 256), necrosis={"right": "moderate", "left": "mild"}
    )
    return write_mr_series(
        ph.images,
        folder,
        pixel_spacing_mm=ph.pixel_spacing_mm,
        slice_thickness_mm=ph.slice_thickness_mm,
        spacing_between_slices_mm=ph.spacing_between_slices_mm,
        image_orientation=ph.image_orientation,
        first_position=ph.first_position,
        patient_name="LATE^SLICES",
        patient_id="LATE-001",
        study_date="20240301",
    )


def _upload(context: Any, portal: Portal, files: list[Path]) -> int:
    page = context.new_page()
    page.goto(f"{portal.base_url}/upload/")
    page.set_input_files("#file-input", [str(f) for f in files])
    page.click("#start-upload")
    link = page.wait_for_selector("#upload-summary a[href^='/studies/']", timeout=120_000)
    study_id = int(link.get_attribute("href").strip("/").split("/")[-1])
    page.close()
    return study_id


def _detail(context: Any, portal: Portal, study_id: int) -> dict[str, Any]:
    return context.request.get(f"{portal.base_url}/api/studies/{study_id}/").json()


def _wait(context: Any, portal: Portal, study_id: int, done: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + ANALYSIS_TIMEOUT_S
    while time.monotonic() < deadline:
        detail = _detail(context, portal, study_id)
        if detail["status"] == "failed":
            pytest.fail(f"the analysis failed: {detail['error']}")
        if done(detail):
            return detail
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}: {detail['status']} {detail['progress']}")


def test_late_slices_keep_the_grade_and_say_ai_changed(
    browser: Any, portal: Portal, tmp_path: Path, screenshot_dir: Path | None
) -> None:
    context = login(browser, portal, "demo")
    files = _phantom(tmp_path)
    study_id = _upload(context, portal, files[:8])
    _wait(context, portal, study_id, lambda d: d["status"] == "done", "the first analysis")

    # The clinician grades the right hip in the viewer.
    page = context.new_page()
    page.goto(f"{portal.base_url}/studies/{study_id}/")
    page.wait_for_function("document.body.dataset.viewerReady === 'true'", timeout=60_000)
    card = page.locator(".hip-card[data-side='right']")
    card.locator("summary", has_text="Change grade").click()
    card.locator("select[name='grade']").select_option("severe")
    card.locator(".grade-form textarea").fill("collapse of the dome on the coronal images")
    card.locator(".grade-form button[type=submit]").click()
    page.wait_for_function(
        "document.querySelector(\".hip-card[data-side='right'] .current-grade\")"
        ".textContent === 'Severe'"
    )

    page.evaluate(
        """() => {
          window.__toasts = [];
          new MutationObserver(() => document.querySelectorAll('.toast').forEach(
            (t) => window.__toasts.push(t.textContent))).observe(document.body, {
              subtree: true, childList: true });
        }"""
    )
    # The other half of the series arrives; the viewer stays open.
    _upload(context, portal, files[8:])
    detail = _wait(
        context,
        portal,
        study_id,
        lambda d: (
            d["status"] == "done"
            and any(s["analysis"] and s["instance_count"] == 16 for s in d["series"])
            and d["progress"]["total"] == 16
        ),
        "the second analysis",
    )
    right = next(h for h in detail["hips"] if h["side"] == "right")
    assert right["grade"] == "severe", "the clinician's grade was lost"
    assert right["revisions"][-1]["reason"] == "collapse of the dome on the coronal images"
    assert right["ai_changed_since_review"], right
    # Live: the toast and the refreshed card, without a reload.
    page.wait_for_function(
        "window.__toasts.some((t) => t.startsWith('AI changed since your review'))",
        timeout=30_000,
    )
    page.wait_for_selector(".hip-card[data-side='right'] .ai-changed", timeout=30_000)
    assert page.locator(".hip-card[data-side='right'] .current-grade").inner_text() == "Severe"
    # The stack now holds the late slices too.
    page.wait_for_function("document.body.innerText.includes('/ 16')", timeout=30_000)
    shots = screenshot_dir or tmp_path
    page.screenshot(path=str(shots / "viewer-ai-changed-1366x768.png"))

    worklist = context.new_page()
    worklist.goto(f"{portal.base_url}/")
    chip = worklist.wait_for_selector(f"tr[data-study-id='{study_id}'] .ai-changed-chip")
    assert chip.inner_text() == "AI changed since your review"
    worklist.screenshot(path=str(shots / "worklist-ai-changed-1366x768.png"))
    context.close()
