"""A full hip protocol study in the viewer: the series picker says which series are graded,
a STIR series shows why it is not, the T1 hips show extent, JIC type, Kerboul angle and
stage (the JIC type and Kerboul angle from the graded coronal T1, as the API gives
them), and a clinician changes the JIC type with a reason (in the audit trail)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.viewer_tests.conftest import Portal, login

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def protocol_study(portal: Portal, tmp_path_factory: pytest.TempPathFactory) -> int:
    from grading.dicom.protocol_writer import SeriesPlan, write_protocol_study
    from grading.engine.phantoms.volume import make_volume_phantom

    plans = (
        SeriesPlan("COR T1 TSE", "coronal", "T1", 10, 4.0),
        SeriesPlan("COR STIR", "coronal", "STIR", 10, 4.0),
        SeriesPlan("AX T1 TSE", "axial", "T1", 16, 4.0, enhanced=True),
    )
    folder = tmp_path_factory.mktemp("protocol")
    written = write_protocol_study(make_volume_phantom(4), folder, plans=plans)
    token = requests.post(
        f"{portal.base_url}/api/auth/token/",
        json={"username": "demo", "password": portal.password},
        timeout=30,
    ).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    files = [
        ("files", (p.name, p.read_bytes(), "application/dicom")) for s in written for p in s.paths
    ]
    answer = requests.post(
        f"{portal.base_url}/api/uploads/", files=files, headers=headers, timeout=120
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["rejected"] == []
    study_id = int(answer.json()["studies"][0]["id"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = requests.get(
            f"{portal.base_url}/api/studies/{study_id}/", headers=headers, timeout=30
        ).json()
        if body["status"] in ("done", "failed"):
            break
        time.sleep(1)
    assert body["status"] == "done", json.dumps(body)[:2000]
    return study_id


def test_protocol_study_in_the_viewer(
    browser: Any, portal: Portal, protocol_study: int, screenshot_dir: Path | None
) -> None:
    context = login(browser, portal, "demo")
    page = context.new_page()
    page.goto(f"{portal.base_url}/studies/{protocol_study}/")
    page.wait_for_function("document.body.dataset.viewerReady === 'true'", timeout=60_000)
    options = page.eval_on_selector_all(
        "#series-picker option", "els => els.map(e => e.textContent)"
    )
    assert any("COR STIR" in o and "not graded" in o for o in options), options
    assert any("AX T1 TSE" in o and "T1 axial" in o and "not graded" not in o for o in options), (
        options
    )
    assert any("COR T1 TSE" in o and "not graded" not in o for o in options), options
    # The viewer opens the graded axial T1 (an Enhanced MR file, shown frame by frame).
    selected = page.eval_on_selector("#series-picker", "e => e.selectedOptions[0].textContent")
    assert "AX T1 TSE" in selected
    assert page.evaluate("window.onfhViewer.viewer.sliceCount") == 16
    cards = page.locator(".hip-card")
    assert cards.count() >= 1
    first = cards.first
    assert first.locator(".extent").inner_text()
    assert (
        "radiograph needed" in first.locator(".stage").inner_text()
        or "no necrosis" in first.locator(".stage").inner_text()
    )
    # The AI's JIC type from the mid-coronal T1 (or "not set" where it found none) and
    # the Kerboul angle of the coronal arc alone: no sagittal series here.
    shown = first.locator(".jic-type").inner_text()
    assert shown == "not set" or shown.split(":")[0] in ("A", "B", "C1", "C2"), shown
    kerboul = first.locator(".kerboul").inner_text()
    assert kerboul == "not set" or "one plane only" in kerboul, kerboul
    chosen = "C2" if shown.split(":")[0] != "C2" else "A"
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "viewer-protocol-1366x768.png"))
    # A clinician sets the JIC type, with a reason.
    first.locator(".change-classification summary").click()
    first.locator(".classification-form select[name=jic_type]").select_option(chosen)
    first.locator(".classification-form textarea[name=reason]").fill("read on the coronal T1")
    first.locator(".classification-form button[type=submit]").click()
    page.wait_for_function(
        f"document.querySelector('.hip-card .jic-type')?.textContent.startsWith('{chosen}:')",
        timeout=30_000,
    )
    # The STIR series says why it is not graded.
    stir = next(o for o in options if "COR STIR" in o)
    page.select_option("#series-picker", label=stir)
    page.wait_for_selector(".not-graded", timeout=30_000)
    assert "STIR" in page.locator(".not-graded").inner_text()
    page.locator(".not-graded").scroll_into_view_if_needed()
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "viewer-protocol-stir-1366x768.png"))
    context.close()
