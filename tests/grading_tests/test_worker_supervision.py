"""One dead worker does not stop the portal (issue 13, item 23), on real processes.

- ``python -m onfh_site.launch`` (what ``make run`` runs): SIGKILL its worker; the web
  server keeps answering and the launcher starts a new worker.
- daphne with no worker at all: an analysis left "running" by a dead worker is sent
  again by the web process's own sweep, and the API and the pages say "stalled: no
  worker" until a worker is alive.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from grading.management.commands._processes import free_port, wait_for_port
from tests.conftest import LivePortal, write_phantom_series

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

QUICK = {
    "ONFH_SWEEP_EVERY_S": "1",
    "ONFH_HEARTBEAT_S": "1",
    "ONFH_STALE_AFTER_S": "4",
    "ONFH_PRELOAD_SEGMENTER": "0",
}


def _celery_children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(stat[1]) == parent and b"celery" in cmdline and stat[0] != "Z":
            found.append(int(entry.name))
    return found


def _until(what: str, check, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_a_killed_worker_is_restarted_and_the_portal_stays_up(tmp_path) -> None:
    portal = LivePortal(tmp_path / "var", {**QUICK, "ONFH_DEMO_PASSWORD": "launcher-test-password"})
    portal.port = free_port()
    portal.env["PORT"] = str(portal.port)
    portal.env["ONFH_SCP_PORT"] = str(free_port())  # the launcher's DICOM receiver
    launcher = portal.spawn("launch", [sys.executable, "-m", "onfh_site.launch", "--studies", "0"])
    try:
        wait_for_port(portal.port, launcher, 300, "the launcher's daphne")
        portal.create_user()

        def one_worker() -> int | None:
            code, body = portal.api("GET", "/api/workers/")
            pids = _celery_children(launcher.pid)
            return pids[0] if code == 200 and body["alive"] == 1 and len(pids) == 1 else None

        first = _until("the worker is alive", one_worker, 180)
        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()
        code, _ = portal.api("GET", "/api/studies/")
        assert code == 200 and launcher.poll() is None
        second = _until(
            "a new worker is started",
            lambda: next((p for p in _celery_children(launcher.pid) if p != first), None),
            60,
        )
        assert time.monotonic() - killed_at < 60
        _until(
            "the new worker says it is alive",
            lambda: portal.api("GET", "/api/workers/")[1]["alive"] == 1,
            120,
        )
        assert launcher.poll() is None, portal.log("launch")[-3000:]
        assert "the worker stopped (exit -9); starting a new one" in portal.log("launch")
        assert second != first
        code, _ = portal.api("GET", "/api/studies/")
        assert code == 200
    finally:
        portal.stop_all()
    assert launcher.returncode == 0, portal.log("launch")[-3000:]
    assert _celery_children(launcher.pid) == []


def _sqlite(portal: LivePortal, statement: str, params: list) -> None:
    with sqlite3.connect(portal.var_dir / "db.sqlite3", timeout=30) as db:
        db.execute(statement, params)


def test_with_no_worker_the_web_process_sweeps_and_says_stalled(tmp_path) -> None:
    portal = LivePortal(tmp_path / "var", QUICK)
    portal.manage("migrate", "--noinput", "-v", "0")
    portal.create_user()
    portal.start_server()
    try:
        phantom = write_phantom_series(tmp_path / "p", seed=5, n_slices=4)
        code, body = portal.api("POST", "/api/uploads/", files=phantom.paths)
        assert code == 201, body
        study_id = body["studies"][0]["id"]
        code, detail = portal.api("GET", f"/api/studies/{study_id}/")
        assert detail["status"] == "queued" and detail["stalled"] == "no worker"
        # (The worker would have made the analysis from the upload's message.)
        portal.manage(
            "shell",
            "-c",
            "from grading.models import Series\n"
            "from grading.services import analysis_request\n"
            "for series in Series.objects.all():\n"
            "    analysis_request(series=series)\n",
        )
        # A worker of another machine died at 75 %: its heartbeat stopped an hour ago.
        _sqlite(
            portal,
            "UPDATE grading_analysis SET status='running', progress_done=3, progress_total=4, "
            "worker='gone-host:4242', started='2000-01-01 00:00:00', "
            "heartbeat='2000-01-01 00:00:00'",
            [],
        )
        _sqlite(
            portal,
            "UPDATE grading_study SET status='running', progress_done=3, progress_total=4 "
            "WHERE id = ?",
            [study_id],
        )
        detail = _until(
            "the web process's sweep sends the analysis again",
            lambda: (
                (d := portal.api("GET", f"/api/studies/{study_id}/")[1])["status"] == "queued" and d
            ),
            60,
        )
        assert detail["stalled"] == "no worker"
        code, listing = portal.api("GET", "/api/studies/")
        assert listing["results"][0]["stalled"] == "no worker"
        code, workers = portal.api("GET", "/api/workers/")
        assert workers == {"alive": 0, "stalled": "no worker", "workers": []}
        code, audit = portal.api("GET", f"/api/studies/{study_id}/audit/")
        assert any(e["action"] == "analysis.requeue" for e in audit)
        page = portal.connection()
        page.request("GET", "/", headers={"Cookie": f"sessionid={portal.session}"})
        html = page.getresponse().read().decode()
        assert "Stalled: no worker" in html

        portal.start_worker("w1")
        _until(
            "a worker is alive",
            lambda: portal.api("GET", "/api/workers/")[1]["alive"] == 1,
            180,
        )
        code, detail = portal.api("GET", f"/api/studies/{study_id}/")
        assert detail["stalled"] is None
        page = portal.connection()
        page.request("GET", "/", headers={"Cookie": f"sessionid={portal.session}"})
        assert "Stalled" not in page.getresponse().read().decode()
    finally:
        portal.stop_all()
