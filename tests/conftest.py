"""Test-wide overrides: the only settings that differ from the embedded mode.

Files go to a temporary folder, Celery messages to kombu's in-memory transport (a test
that wants a task runs it directly; the real broker is tested in test_embedded_mode and
test_production_mode), and the segmenter is not preloaded.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

_MEDIA = Path(tempfile.mkdtemp(prefix="onfh-test-media-"))

settings.MEDIA_ROOT = _MEDIA
settings.STORAGES = {
    **settings.STORAGES,
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(_MEDIA), "base_url": "/media/"},
    },
}
if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not SQLite's shared-cache memory DB: threads then wait for the write lock
    # (busy timeout) as the web and worker processes do, instead of failing at once.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        _MEDIA.parent / f"{_MEDIA.name}.sqlite3"
    )
settings.CELERY_BROKER_URL = "memory://"
settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
settings.ONFH_PRELOAD_SEGMENTER = False
settings.ONFH_SWEEP_EVERY_S = 0
settings.ONFH_HEARTBEAT_S = 0  # no thread writing beside the test's open transaction
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from onfh_site.celery import app as _celery_app  # noqa: E402

_celery_app.conf.broker_url = "memory://"
_celery_app.conf.broker_transport_options = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_MEDIA, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_MEDIA}.sqlite3{suffix}").unlink(missing_ok=True)


@pytest.fixture
def media_root() -> Path:
    return _MEDIA


def weights_available() -> bool:
    """Trained weights: ONFH_WEIGHTS when set, else the shipped file."""
    from grading.engine.predictor import DEFAULT_WEIGHTS

    return Path(settings.ONFH_WEIGHTS or DEFAULT_WEIGHTS).is_file()


# --- scenario fixtures shared by the portal tests ----------------------------------------

from typing import NamedTuple  # noqa: E402


class PhantomFiles(NamedTuple):
    """A small bilateral phantom series written as DICOM files."""

    paths: list[Path]
    study_instance_uid: str
    series_instance_uid: str
    truth: dict
    labels: object  # (N, H, W) uint8 ground-truth label maps, slice k = paths[k]


def write_phantom_series(
    out_dir: Path,
    *,
    seed: int = 1,
    n_slices: int = 6,
    matrix: tuple[int, int] = (256, 256),
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    patient_id: str = "PHANTOM",
    necrosis: dict | None = None,
    image_orientation: tuple | None = None,
) -> PhantomFiles:
    import pydicom.uid

    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    phantom = make_bilateral_series(seed, n_slices=n_slices, matrix=matrix, necrosis=necrosis)
    study_uid = study_uid or pydicom.uid.generate_uid()
    series_uid = series_uid or pydicom.uid.generate_uid()
    paths = write_mr_series(
        phantom.images,
        out_dir,
        pixel_spacing_mm=phantom.pixel_spacing_mm,
        slice_thickness_mm=phantom.slice_thickness_mm,
        spacing_between_slices_mm=phantom.spacing_between_slices_mm,
        image_orientation=image_orientation or phantom.image_orientation,
        first_position=phantom.first_position,
        patient_id=patient_id,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        series_number=series_number,
        study_date="20240102",
    )
    return PhantomFiles(paths, study_uid, series_uid, phantom.truth, phantom.labels)


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> PhantomFiles:
    return write_phantom_series(
        tmp_path_factory.mktemp("phantom"),
        seed=3,
        n_slices=6,
        necrosis={"right": "moderate", "left": "none"},
    )


class Scenario(NamedTuple):
    site: object
    other_site: object
    clinician: object
    student: object
    outsider: object


@pytest.fixture
def scenario(db: None) -> Scenario:
    from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

    site, other = SiteFactory(name="North"), SiteFactory(name="South")
    clinician = UserFactory(username="clin")
    student = UserFactory(username="stud")
    outsider = UserFactory(username="out")
    MembershipFactory(user=clinician, site=site, role="clinician")
    MembershipFactory(user=student, site=site, role="student")
    MembershipFactory(user=outsider, site=other, role="clinician")
    return Scenario(site, other, clinician, student, outsider)


# --- real processes: the embedded and production mode tests -----------------------------

import json as _json  # noqa: E402
import os as _os  # noqa: E402
import socket as _socket  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import sys as _sys  # noqa: E402
import time as _time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_MODE_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "ONFH_STORAGE",
    "SECRET_KEY",
    "ONFH_BROKER_KEY_PREFIX",
    "ONFH_CHANNELS_PREFIX",
    "ONFH_VAR_DIR",
)


def free_port() -> int:
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LivePortal:
    """Runs manage.py, daphne and celery workers as real subprocesses with ``env``."""

    def __init__(self, var_dir: Path, env: dict[str, str]) -> None:
        self.var_dir = var_dir
        self.env = {k: v for k, v in _os.environ.items() if k not in _MODE_VARS}
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "onfh_site.settings",
                "ONFH_VAR_DIR": str(var_dir),
                "PYTHONUNBUFFERED": "1",
                "ONFH_TORCH_THREADS": "1",
                "LOG_LEVEL": "INFO",
            }
        )
        self.env.update(env)
        self.processes: dict[str, _subprocess.Popen[bytes]] = {}
        self.port: int | None = None
        self.token = ""
        self.session = ""

    def log(self, name: str) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def manage(self, *args: str, timeout: float = 300) -> str:
        done = _subprocess.run(
            [_sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise AssertionError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _spawn(self, name: str, argv: list[str]) -> _subprocess.Popen[bytes]:
        log = (self.var_dir / f"{name}.log").open("ab")
        process = _subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=_subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def start_worker(
        self, name: str, *, queues: str = "gpu,default", extra: tuple[str, ...] = ("--pool", "solo")
    ) -> _subprocess.Popen[bytes]:
        return self._spawn(
            name,
            [
                _sys.executable,
                "-m",
                "celery",
                "-A",
                "onfh_site",
                "worker",
                "-Q",
                queues,
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
                *extra,
            ],
        )

    def start_server(self, timeout: float = 120) -> None:
        self.port = free_port()
        process = self._spawn(
            "daphne",
            [
                _sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "onfh_site.asgi:application",
            ],
        )
        deadline = _time.monotonic() + timeout
        while _time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"daphne exited:\n{self.log('daphne')}")
            try:
                _socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                _time.sleep(0.3)
        raise AssertionError(f"daphne did not listen in {timeout} s:\n{self.log('daphne')}")

    def create_user(self) -> None:
        """A site, a clinician and an API token, through the ORM of a manage.py shell."""
        out = self.manage(
            "shell",
            "-c",
            (
                "from django.contrib.auth.models import User\n"
                "from rest_framework.authtoken.models import Token\n"
                "from grading.models import Site, Membership\n"
                "site, _ = Site.objects.get_or_create(code='live', defaults={'name': 'Live'})\n"
                "user, _ = User.objects.get_or_create(username='live')\n"
                "Membership.objects.get_or_create(user=user, site=site, "
                "defaults={'role': 'clinician'})\n"
                "print('TOKEN', Token.objects.get_or_create(user=user)[0].key)\n"
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
        self.token = next(line.split()[1] for line in lines if line.startswith("TOKEN"))
        self.session = next(line.split()[1] for line in lines if line.startswith("SESSION"))

    def api(
        self, method: str, path: str, *, files: list[Path] | None = None, timeout: float = 120
    ) -> tuple[int, object]:
        argv = [
            "curl",
            "-s",
            "-X",
            method,
            "-H",
            f"Authorization: Token {self.token}",
            "-H",
            "Expect:",
            "-w",
            "\n%{http_code}",
            "--max-time",
            str(timeout),
            f"http://127.0.0.1:{self.port}{path}",
        ]
        for f in files or []:
            argv += ["-F", f"files=@{f};type=application/dicom"]
        done = _subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
        body, _, status = done.stdout.rpartition("\n")
        try:
            return int(status), _json.loads(body) if body else None
        except ValueError:
            return int(status or 0), body

    def wait_for_study(self, study_id: int, statuses: set[str], timeout: float = 240) -> dict:
        deadline = _time.monotonic() + timeout
        detail: object = None
        while _time.monotonic() < deadline:
            code, detail = self.api("GET", f"/api/studies/{study_id}/")
            if code == 200 and isinstance(detail, dict) and detail["status"] in statuses:
                return detail
            for name, process in self.processes.items():
                if process.poll() is not None and name == "daphne":
                    raise AssertionError(f"daphne died:\n{self.log('daphne')}")
            _time.sleep(0.5)
        raise AssertionError(
            f"study {study_id} not {statuses} after {timeout} s: {detail}\n"
            + "\n".join(f"--- {n}\n{self.log(n)[-4000:]}" for n in self.processes)
        )

    def stop(self, name: str, *, kill: bool = False) -> None:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=30)
        except _subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


class WebSocketClient:
    """Just enough of RFC 6455 to read a server's text messages (tests only)."""

    def __init__(self, port: int, path: str, *, cookie: str, origin: str) -> None:
        import base64

        self.sock = _socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(_os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = _os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def receive_json(self, timeout: float) -> dict | None:
        """The next text message as JSON, or None when nothing came within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b0, b1 = self._exact(2)
                length = b1 & 0x7F
                if length == 126:
                    length = int.from_bytes(self._exact(2), "big")
                elif length == 127:
                    length = int.from_bytes(self._exact(8), "big")
                payload = self._exact(length)
                opcode = b0 & 0x0F
                if opcode == 0x9:
                    self._send(0xA, payload)
                elif opcode == 0x8:
                    raise ConnectionError("closed by the server")
                elif opcode == 0x1:
                    return _json.loads(payload)
        except TimeoutError:
            return None

    def close(self) -> None:
        try:
            self._send(0x8, b"")
        finally:
            self.sock.close()
