"""Embedded mode in one command: ``python -m onfh_site.launch`` (what ``make run`` does).

Migrates the SQLite database under var/, loads the demo data (``seed_demo``), starts the
ASGI server (daphne) on 127.0.0.1:$PORT (default 8000) and one Celery worker on the
file-system broker, prints the URL and the login, and on Ctrl-C (or SIGTERM) stops both
and exits. If either child stops on its own, the other is stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, check=True)


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


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onfh_site.settings")
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("ONFH_BIND", "127.0.0.1")
    seed_args = list(argv if argv is not None else sys.argv[1:])
    if not any(a.startswith("--base-url") for a in seed_args):
        seed_args += ["--base-url", f"http://{host}:{port}"]

    print("ONFH grading portal (research and teaching software, not a medical device)")
    _manage("migrate", "--noinput", "-v", "0")
    _manage("seed_demo", *seed_args)

    worker = subprocess.Popen(
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
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", host, "-p", port, "onfh_site.asgi:application"],
        cwd=ROOT,
    )
    children = [worker, server]
    print(f"\n  Portal: http://{host}:{port}/    (API: /api/, docs: /api/docs/)")
    if "--no-use-cases" not in seed_args:
        print("  Log in as the table above says for each use case; the worker now analyses")
        print("  the queued studies DEMO-007 and DEMO-008 (watch them on the worklist).")
    print("  Ctrl-C stops the portal and the worker.\n", flush=True)

    stopping = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while stopping["signal"] is None:
            if any(p.poll() is not None for p in children):
                dead = next(p for p in children if p.poll() is not None)
                name = "worker" if dead is worker else "server"
                print(
                    f"the {name} stopped (exit {dead.returncode}); stopping the rest",
                    file=sys.stderr,
                )
                _stop(children)
                return 1
            time.sleep(0.5)
    finally:
        _stop(children)
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
