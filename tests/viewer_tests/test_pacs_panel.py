"""The study page's PACS panel in Chromium, against the embedded portal (make run's
launcher, with its DICOM receiver) and a real Orthanc: find the patient's prior study on
the PACS, fetch it, and send the current series' results back (issue 15 items 2, 3)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.grading_tests.interop.conftest import start_orthanc, write_series
from tests.viewer_tests.conftest import Portal, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


def _api(portal: Portal, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{portal.base_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 - local test server
        return json.loads(answer.read() or b"null")


def _token(portal: Portal, username: str) -> str:
    request = urllib.request.Request(
        f"{portal.base_url}/api/auth/token/",
        data=json.dumps({"username": username, "password": portal.password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - local test server
        return str(json.loads(answer.read())["token"])


def _upload(portal: Portal, token: str, paths: list[Path]) -> int:
    import subprocess

    argv = ["curl", "-s", "-H", f"Authorization: Token {token}", "-H", "Expect:"]
    for path in paths:
        argv += ["-F", f"files=@{path};type=application/dicom"]
    done = subprocess.run(
        [*argv, f"{portal.base_url}/api/uploads/"], capture_output=True, text=True, timeout=300
    )
    return int(json.loads(done.stdout)["studies"][0]["id"])


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_find_fetch_and_send_from_the_study_page(
    browser: Any, portal: Portal, tmp_path: Path, screenshot_dir: Path | None
) -> None:
    orthanc = start_orthanc(tmp_path / "orthanc", scp_port=portal.scp_port)
    try:
        current = write_series(
            tmp_path / "current", seed=31, patient_id="PACS-042", study_date="20261201"
        )
        prior = write_series(
            tmp_path / "prior", seed=32, patient_id="PACS-042", study_date="20250310"
        )
        orthanc.upload(prior.paths)

        admin, demo = _token(portal, "demo_admin"), _token(portal, "demo")
        site = next(
            s for s in _api(portal, admin, "GET", "/api/me/")["sites"] if s["role"] == "site_admin"
        )
        node = {"name": "Hospital PACS", "ae_title": "ORTHANC", "host": "127.0.0.1"}
        _api(
            portal,
            admin,
            "POST",
            "/api/pacs/nodes/",
            {**node, "port": orthanc.dicom_port, "site": site["id"]},
        )
        study_id = _upload(portal, demo, current.paths)
        _wait(
            lambda: (
                _api(portal, demo, "GET", f"/api/studies/{study_id}/")["status"]
                in ("done", "failed")
            ),
            600,
            "the analysis of the uploaded study",
        )

        context = login(browser, portal, "demo", width=1500, height=900)
        page = context.new_page()
        page.goto(f"{portal.base_url}/studies/{study_id}/")
        page.wait_for_selector("#pacs-search:not([disabled])", timeout=60_000)
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.click("#pacs-search")
        try:
            page.wait_for_selector("#pacs-results table", timeout=60_000)
        except Exception as exc:
            shown = page.inner_text("#pacs-panel")
            raise AssertionError(f"no results: {shown!r}; console: {console}") from exc
        rows = page.locator("#pacs-results tr")
        assert rows.count() == 1
        assert "2025-03-10" in rows.first.inner_text()
        page.click("#pacs-results button:has-text('Fetch')")
        _wait(
            lambda: any(
                s["study_instance_uid"] == prior.study_instance_uid
                for s in _api(portal, demo, "GET", "/api/studies/?search=PACS-042")["results"]
            ),
            120,
            "the prior study in the worklist",
        )
        page.wait_for_selector("#pacs-results :text('in the portal')", timeout=120_000)

        page.click("#pacs-sends button:has-text('Send SEG, SR and summary')", timeout=60_000)
        page.wait_for_selector("#pacs-sends li.state-done", timeout=120_000)
        assert "→ Hospital PACS: sent" in page.inner_text("#pacs-sends li.state-done")
        sent = {
            i["MainDicomTags"].get("SOPInstanceUID")
            for i in orthanc.instances_of(current.study_instance_uid)
        }
        assert len(sent) == 3  # SEG, SR and the summary image, in the current study
        if screenshot_dir is not None:
            page.locator("#pacs-panel").screenshot(path=str(screenshot_dir / "pacs-panel.png"))
        page.locator("#pacs-panel").screenshot(path=str(tmp_path / "pacs-panel.png"))
        context.close()
    finally:
        orthanc.server.stop()
