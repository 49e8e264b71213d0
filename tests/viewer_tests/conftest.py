"""A live portal for the browser tests: the embedded launcher (``python -m onfh_site.launch``:
migrate, demo users, daphne and a real Celery worker on the file-system broker) in a
temporary var/ folder (SQLite, broker, media), driven by Debian's Chromium through
Playwright. Never ``playwright install``: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from grading.management.commands._processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ONFH_CHROMIUM", "/usr/bin/chromium")
MANIFEST = ROOT / "static" / "viewer" / ".vite" / "manifest.json"
PASSWORD = "browser-test-pass-1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
# Settings that would point the child at production services: the test portal is embedded.
_PRODUCTION_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ONFH_STORAGE", "STATIC_ROOT")


class Portal(NamedTuple):
    base_url: str
    password: str
    var_dir: Path
    log: Path
    scp_port: int = 0  # the launcher's DICOM receiver


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the portal exited ({process.returncode}):\n{log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - local test server
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"the portal did not answer {url} in {timeout:.0f} s:\n{log.read_text()[-4000:]}"
    )


@contextlib.contextmanager
def running_portal(
    extra_env: dict[str, str] | None = None,
    launch_args: tuple[str, ...] = ("--studies", "0", "--no-use-cases"),
    start_timeout: float = 180,
) -> Iterator[Portal]:
    """The embedded launcher in a temporary var/ folder on a free loopback port
    (``launch_args`` go to seed_demo: by default no demo data, the tests make their own)."""
    if not Path(CHROMIUM).exists():  # a missing peer fails (make install-system has it)
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
        )
    if not MANIFEST.exists():
        pytest.fail("The viewer bundle is not built: cd viewer/frontend && npm ci && npm run build")
    var_dir = Path(tempfile.mkdtemp(prefix="onfh-browser-"))
    log = var_dir / "portal.log"
    port = int((extra_env or {}).get("PORT") or free_port())
    scp_port = int((extra_env or {}).get("ONFH_SCP_PORT") or free_port())
    env = {k: v for k, v in os.environ.items() if k not in _PRODUCTION_ENV}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "onfh_site.settings",
            "ONFH_VAR_DIR": str(var_dir),
            "ONFH_DEMO_PASSWORD": PASSWORD,
            "PORT": str(port),
            "ONFH_SCP_PORT": str(scp_port),
            "ONFH_BIND": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "onfh_site.launch", *launch_args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base_url}/login/", process, log, timeout=start_timeout)
        yield Portal(base_url, PASSWORD, var_dir, log, scp_port)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if os.environ.get("ONFH_KEEP_BROWSER_VAR"):
            print(f"browser-test portal files kept in {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def portal() -> Iterator[Portal]:
    with running_portal() as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright gives each launch a fresh temporary profile (user-data dir) of its own.
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def login(
    browser: Any, portal: Portal, username: str, *, width: int = 1366, height: int = 768
) -> Any:
    """A fresh browser context logged in through the login page.

    Playwright's ``wait_for_function`` evaluates its predicate in the page, which the
    portal's Content-Security-Policy refuses (no 'unsafe-eval'): these contexts bypass
    the policy; test_viewer_works_under_the_content_security_policy keeps it."""
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{portal.base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", portal.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{portal.base_url}/")
    page.close()
    return context


class Bench:
    """Figures the browser tests measure, written where ONFH_VIEWER_BENCH_JSON points."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def record(self, key: str, value: Any) -> None:
        self.figures[key] = value
        path = os.environ.get("ONFH_VIEWER_BENCH_JSON")
        if path:
            Path(path).write_text(json.dumps(self.figures, indent=2))


@pytest.fixture(scope="session")
def bench() -> Bench:
    return Bench()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path | None:
    """Screenshots are written only when ONFH_SCREENSHOT_DIR is set (docs/screenshots)."""
    value = os.environ.get("ONFH_SCREENSHOT_DIR")
    if not value:
        return None
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path
