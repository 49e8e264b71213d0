"""``python manage.py bench_startup``: how soon ``make run`` serves, and how soon every demo
use case is ready, from an empty var/ folder (docs/benchmarks.md).

Starts the launcher (``make run`` with ``--make``, else ``python -m onfh_site.launch``) in a
fresh temporary var/ on free ports, and measures from the start: the first HTTP 200 on
``/login/``, and the launcher's "Demo use cases ready." line. At the first 200 it also
reads, from the SQLite database, how many analyses were done by then: the portal serves
before any analysis (``seed_demo --stage accounts``), and the worker does them all
afterwards. Then it stops the launcher (SIGTERM) and prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from grading.management.commands._processes import free_port

ROOT = Path(__file__).resolve().parents[3]
# The ready line, then the table down to its last row, the patient link.
READY_RE = re.compile(r"^Demo use cases ready\.$[\s\S]*?/p/#[\w-]+$", re.MULTILINE)
# Settings that would point the launcher at production services: it measures the embedded mode.
_PRODUCTION_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ONFH_STORAGE", "STATIC_ROOT")


@dataclass
class Startup:
    first_200_s: float
    ready_s: float | None
    analyses_done_at_first_200: int
    analyses_done_at_ready: int
    analyses_total_at_ready: int
    worker_names: list[str]
    # each analysing process's command line (Linux /proc), read while the launcher runs
    worker_commands: list[str]
    log: str


def _command_of(worker: str) -> str:
    """``host:pid`` (``Analysis.worker``) -> that process's command line, or ""."""
    pid = worker.rpartition(":")[2]
    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _analyses(db: Path) -> tuple[int, int, list[str]]:
    """(done, total, the workers that ran them) from the launcher's SQLite database."""
    if not db.exists():
        return 0, 0, []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT status, worker FROM grading_analysis").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return 0, 0, []
    done = sum(1 for status, _ in rows if status in ("done", "failed"))
    return done, len(rows), sorted({worker for _, worker in rows if worker})


def startup_measure(
    *,
    use_make: bool = False,
    timeout_s: float = 900.0,
    env_extra: dict[str, str] | None = None,
    var_dir: Path | None = None,
) -> Startup:
    """Start the launcher and time it (see the module's docstring): from an empty var/
    folder, or from ``var_dir`` (kept) as a second ``make run`` finds it."""
    keep_var = var_dir is not None
    var_dir = var_dir or Path(tempfile.mkdtemp(prefix="onfh-startup-"))
    log_path = var_dir / "launch.log"
    port, scp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in _PRODUCTION_ENV}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "onfh_site.settings",
            "ONFH_VAR_DIR": str(var_dir),
            "PORT": str(port),
            "ONFH_SCP_PORT": str(scp_port),
            "ONFH_BIND": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **(env_extra or {}),
        }
    )
    argv = (
        ["make", "--no-print-directory", "run", f"PORT={port}"]
        if use_make
        else [sys.executable, "-m", "onfh_site.launch"]
    )
    url = f"http://127.0.0.1:{port}/login/"
    db = var_dir / "db.sqlite3"
    started = time.monotonic()
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        first_200 = None
        done_at_first = 0
        while first_200 is None:
            if process.poll() is not None:
                raise RuntimeError(f"the launcher exited:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"no 200 on {url} in {timeout_s:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - local
                    if answer.status == 200:
                        first_200 = time.monotonic() - started
                        done_at_first = _analyses(db)[0]
            except OSError:
                time.sleep(0.1)
        ready = None
        while ready is None and time.monotonic() - started < timeout_s:
            if READY_RE.search(log_path.read_text(errors="replace")):
                ready = time.monotonic() - started
                break
            if process.poll() is not None:
                break
            time.sleep(0.2)
        done, total, workers = _analyses(db)
        commands = [_command_of(worker) for worker in workers]
        return Startup(
            first_200_s=round(first_200, 2),
            ready_s=None if ready is None else round(ready, 2),
            analyses_done_at_first_200=done_at_first,
            analyses_done_at_ready=done,
            analyses_total_at_ready=total,
            worker_names=workers,
            worker_commands=commands,
            log=log_path.read_text(errors="replace"),
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if not keep_var:
            shutil.rmtree(var_dir, ignore_errors=True)


class Command(BaseCommand):
    help = "Time make run from an empty var/: first 200 on the login page, all use cases ready."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--make", action="store_true", help="run `make run` itself")
        parser.add_argument("--runs", type=int, default=1)
        parser.add_argument(
            "--again",
            action="store_true",
            help="after each run from an empty var/, run again on the var/ it left (a second "
            "`make run`: migrated, demo made)",
        )
        parser.add_argument("--timeout", type=float, default=900.0)

    def handle(self, *args: Any, **options: Any) -> None:
        runs: dict[str, list[dict[str, Any]]] = {"empty var/": [], "second run": []}
        for _ in range(options["runs"]):
            var_dir = Path(tempfile.mkdtemp(prefix="onfh-startup-"))
            try:
                for label in ["empty var/"] + (["second run"] if options["again"] else []):
                    result = asdict(
                        startup_measure(
                            use_make=options["make"], timeout_s=options["timeout"], var_dir=var_dir
                        )
                    )
                    result.pop("log")
                    result.pop("worker_commands")
                    runs[label].append(result)
                    self.stdout.write(json.dumps({"var": label, **result}))
            finally:
                shutil.rmtree(var_dir, ignore_errors=True)
        self.stdout.write(
            json.dumps(
                {
                    "command": "make run" if options["make"] else "python -m onfh_site.launch",
                    **{
                        label: {
                            "first_200_s": [r["first_200_s"] for r in rows],
                            "ready_s": [r["ready_s"] for r in rows],
                        }
                        for label, rows in runs.items()
                        if rows
                    },
                    "load_average_after": os.getloadavg(),
                }
            )
        )
