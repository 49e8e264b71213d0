"""Embedded mode in one command: ``python -m onfh_site.launch`` (what ``make run`` does).

Migrates the SQLite database under var/, makes the demo users (``seed_demo --stage
accounts``, a second or two), starts the ASGI server (daphne) on 127.0.0.1:$PORT (default
8000), one Celery worker on the file-system broker and the DICOM receiver (``manage.py
dicom_scp``: AE ``ONFH`` on 127.0.0.1:$ONFH_SCP_PORT, default 11112), prints the URL and
the login, and, once the portal answers, prepares the demo use cases in the background
(``seed_demo --stage worker``: uploads, the worker analyses, then teaching, consults and
the patient link, which it prints with "Demo use cases ready."). With ``--no-use-cases``
the demo data is made before the server starts, as it has no analyses to wait for. On
Ctrl-C (or SIGTERM) it stops them all and exits. A worker that stops on its own (killed, crashed) is
started again while the web server stays up; if the web server stops, the others are
stopped too; if the receiver stops (its port taken), the portal goes on without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _serving(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    """Whether the server answers ``url`` with 200 within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own server
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _stop(processes: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "onfh_site",
            "worker",
            "-Q",
            "gpu,default",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            "embedded@%h",
            "-l",
            os.environ.get("ONFH_WORKER_LOG_LEVEL", "warning"),
        ],
        cwd=ROOT,
    )


class WorkerRestarts:
    """A dead worker is started again at once; one that keeps dying within a minute of
    its start waits 1, 2, 4 ... up to 60 s before the next try, so a broken worker does
    not spin. Meanwhile the web server goes on (and says "stalled: no worker")."""

    def __init__(self) -> None:
        self.count = 0
        self.quick_deaths = 0
        self.last_start = time.monotonic()
        self.dead_since: float | None = None

    def due(self, worker: subprocess.Popen[bytes]) -> bool:
        now = time.monotonic()
        if self.dead_since is None:
            self.dead_since = now
            if now - self.last_start < 60:
                self.quick_deaths += 1
            else:
                self.quick_deaths = 0
        wait = 0.0 if self.quick_deaths <= 1 else min(60.0, 2.0 ** (self.quick_deaths - 2))
        return now - self.dead_since >= wait

    def started(self) -> None:
        self.count += 1
        self.last_start = time.monotonic()
        self.dead_since = None


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onfh_site.settings")
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("ONFH_BIND", "127.0.0.1")
    seed_args = list(argv if argv is not None else sys.argv[1:])
    if not any(a.startswith("--base-url") for a in seed_args):
        seed_args += ["--base-url", f"http://{host}:{port}"]

    print("ONFH grading portal (research and teaching software, not a medical device)")
    # The use cases need analyses: the worker does them once the portal serves (issue 16),
    # so the first page is a few seconds away, not a minute and a half.
    background_seed = "--no-use-cases" not in seed_args
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "seed_demo",
            "--migrate",  # one process for both: a Django start-up less
            *seed_args,
            *(["--stage", "accounts"] if background_seed else []),
        ],
        cwd=ROOT,
        check=True,
    )

    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", host, "-p", port, "onfh_site.asgi:application"],
        cwd=ROOT,
    )
    print(f"\n  Portal: http://{host}:{port}/    (API: /api/, docs: /api/docs/)", flush=True)
    # The worker and the receiver start once the server answers, so as not to slow it.
    serving = _serving(f"http://{host}:{port}/login/", server)
    worker = _start_worker()
    # The DICOM receiver (AE ONFH, loopback, ONFH_SCP_PORT or 11112): a PACS's C-MOVE
    # destination, and where a scanner can send.
    scp: subprocess.Popen[bytes] | None = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "dicom_scp"],
        cwd=ROOT,
    )
    scp_port = os.environ.get("ONFH_SCP_PORT", "11112")
    print(f"  DICOM receiver: AE ONFH on 127.0.0.1:{scp_port} (README: Connect a PACS)")
    print("  Ctrl-C stops the portal, the worker and the receiver.\n", flush=True)
    seeding: subprocess.Popen[bytes] | None = None
    if background_seed and serving:
        print("  Preparing the demo use cases in the background ...", flush=True)
        seeding = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "seed_demo", *seed_args, "--stage", "worker"],
            cwd=ROOT,
        )

    stopping = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    restarts = WorkerRestarts()
    try:
        while stopping["signal"] is None:
            if scp is not None and scp.poll() is not None:
                # The portal works without it (uploads, DICOMweb); say why PACS work won't.
                print(
                    f"the DICOM receiver stopped (exit {scp.returncode}): is port {scp_port} "
                    "taken? Set ONFH_SCP_PORT. The portal goes on without it.",
                    file=sys.stderr,
                )
                scp = None
            if seeding is not None and seeding.poll() is not None:
                if seeding.returncode != 0:
                    print(
                        f"the demo use cases could not be prepared (exit {seeding.returncode}, "
                        "see above); the portal goes on",
                        file=sys.stderr,
                        flush=True,
                    )
                seeding = None
            if server.poll() is not None:
                print(
                    f"the server stopped (exit {server.returncode}); stopping the worker",
                    file=sys.stderr,
                )
                return 1
            if worker.poll() is not None and restarts.due(worker):
                print(
                    f"the worker stopped (exit {worker.returncode}); starting a new one "
                    f"(restart {restarts.count + 1}); the portal stays up",
                    file=sys.stderr,
                    flush=True,
                )
                worker = _start_worker()
                restarts.started()
            time.sleep(0.5)
    finally:
        _stop([p for p in (seeding, worker, server, scp) if p is not None])
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
