"""Real portal processes (daphne, celery workers, manage.py, Orthanc): ``bench_portal``
runs them, and so do the tests of the embedded and production modes (``tests/conftest.py``
builds its ``LivePortal`` on :class:`Stack`).

Not a command (the leading underscore keeps Django from listing it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
# Variables that choose the mode: the child processes get exactly the ones given.
MODE_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "ONFH_STORAGE",
    "SECRET_KEY",
    "ONFH_BROKER_KEY_PREFIX",
    "ONFH_CHANNELS_PREFIX",
    "ONFH_VAR_DIR",
    "ONFH_CACHE_PREFIX",
    "ONFH_ASGI_PROCESS",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (live ones, and the
    reaped ones they waited for), from /proc: the server's check workers count too."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    ticks = 0
    for member in family:
        fields = _stat(member)
        if fields:
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Stack:
    """manage.py, daphne and celery workers on one var dir with one environment.

    ``env`` is added to this process's environment less the variables that choose the
    mode (``MODE_VARS``): a child gets exactly the mode it is given. Each process logs to
    ``<var_dir>/<name>.log``.
    """

    site_code = "bench"

    def __init__(self, var_dir: Path, env: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        var_dir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if k not in MODE_VARS}
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "onfh_site.settings",
                "ONFH_VAR_DIR": str(var_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(env or {})
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.port = 0
        self.token = ""
        self.session = ""

    def log(self, name: str) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def manage(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            what = " ".join(args[:2])
            raise RuntimeError(
                f"manage.py {what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.var_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def start_server(self, timeout: float = 180) -> None:
        self.port = free_port()
        process = self.spawn(
            "daphne",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "onfh_site.asgi:application",
            ],
        )
        try:
            wait_for_port(self.port, process, timeout, "daphne")
        except RuntimeError as error:
            raise RuntimeError(f"{error}:\n{self.log('daphne')[-3000:]}") from None

    def start_worker(
        self,
        name: str = "worker",
        queues: str = "gpu,default",
        *,
        extra: tuple[str, ...] = ("--pool", "solo"),
        wait: bool = True,
        timeout: float = 300,
    ) -> subprocess.Popen[bytes]:
        """A celery worker on ``queues``; ``wait``: until it logs that it is ready."""
        process = self.spawn(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "onfh_site",
                "worker",
                "-Q",
                queues,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
                "-l",
                "info",
                *extra,
            ],
        )
        deadline = time.monotonic() + timeout
        while wait and " ready." not in self.log(name):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)
        return process

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Terminate (or kill) one process and wait for it; its log stays."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def create_user(self) -> None:
        """A site (``site_code``), a clinician of it, an API token and a logged-in
        session, through the ORM of a manage.py shell."""
        code = self.site_code
        out = self.manage(
            "shell",
            "-c",
            (
                "from django.contrib.auth.models import User\n"
                "from grading.services.tokens import api_token_create\n"
                "from grading.models import Site, Membership\n"
                f"site, _ = Site.objects.get_or_create(code='{code}', "
                f"defaults={{'name': '{code.title()}'}})\n"
                f"user, _ = User.objects.get_or_create(username='{code}')\n"
                "Membership.objects.get_or_create(user=user, site=site, "
                "defaults={'role': 'clinician'})\n"
                "print('TOKEN', api_token_create(user=user, name='stack')[1])\n"
                "from django.contrib.auth import (\n"
                "    BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY)\n"
                "from django.contrib.sessions.backends.db import SessionStore\n"
                "session = SessionStore()\n"
                "session[SESSION_KEY] = str(user.pk)\n"
                "session[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
                "session[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
                "session.create()\n"
                "print('SESSION', session.session_key)\n"
            ),
        )
        lines = out.splitlines()
        self.token = next(x.split()[1] for x in lines if x.startswith("TOKEN"))
        self.session = next(x.split()[1] for x in lines if x.startswith("SESSION"))

    def curl_upload(self, files: list[Path]) -> tuple[int, Any, float]:
        argv = [
            "curl",
            "-s",
            "-H",
            f"Authorization: Token {self.token}",
            "-H",
            "Expect:",
            "-w",
            "\n%{http_code}",
            f"http://127.0.0.1:{self.port}/api/uploads/",
        ]
        for f in files:
            argv += ["-F", f"files=@{f}"]
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        elapsed = time.perf_counter() - start
        body, _, code = done.stdout.rpartition("\n")
        try:
            return int(code), json.loads(body), elapsed
        except ValueError:
            return int(code or 0), body, elapsed

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get_json(self, conn: http.client.HTTPConnection, path: str) -> tuple[int, Any]:
        conn.request("GET", path, headers={"Authorization": f"Token {self.token}"})
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else None


class Orthanc:
    """Debian's Orthanc on loopback with a throw-away storage folder and config."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def available(self) -> bool:
        return Path(self.binary).exists()

    def version(self) -> str:
        done = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return (done.stdout.splitlines() or ["?"])[0].strip()

    def start(self) -> None:
        storage = self.folder / "storage"
        shutil.rmtree(storage, ignore_errors=True)
        storage.mkdir(parents=True)
        self.port = free_port()
        config = self.folder / "orthanc.json"
        config.write_text(
            json.dumps(
                {
                    "Name": "bench",
                    "StorageDirectory": str(storage),
                    "IndexDirectory": str(storage),
                    "HttpPort": self.port,
                    "DicomServerEnabled": False,
                    "DicomPort": free_port(),
                    "RemoteAccessAllowed": False,
                    "AuthenticationEnabled": False,
                    "Plugins": [],
                }
            )
        )
        log = (self.folder / "orthanc.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.process, 60, "Orthanc")

    def post_zip(self, archive: Path) -> tuple[int, float, int]:
        """(HTTP status, seconds, instances now stored)."""
        start = time.perf_counter()
        done = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-H",
                "Expect:",
                "--data-binary",
                f"@{archive}",
                f"http://127.0.0.1:{self.port}/instances",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        elapsed = time.perf_counter() - start
        stats = subprocess.run(
            ["curl", "-s", f"http://127.0.0.1:{self.port}/statistics"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        count = int(json.loads(stats.stdout or "{}").get("CountInstances", 0))
        return int(done.stdout or 0), elapsed, count

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
