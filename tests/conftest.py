"""Test-wide overrides: the only settings that differ from the embedded mode.

Files go to a temporary folder, Celery messages to kombu's in-memory transport (a test
that wants a task runs it directly; the real broker is tested in test_embedded_mode and
test_production_mode), and the segmenter is not preloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

_MEDIA = Path(tempfile.mkdtemp(prefix="onfh-test-media-"))

settings.MEDIA_ROOT = _MEDIA
_S3 = None
if os.environ.get("ONFH_STORAGE") == "s3":
    # S3 mode (make test runs the storage-heavy tests this way too): moto's stand-alone
    # server, started here on a free loopback port, with a bucket and a checked key.
    from tests.s3_server import start_moto_s3

    _S3 = start_moto_s3(_MEDIA / "moto.log")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _S3.storage_options()},
    }
else:
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
settings.ONFH_INGEST_QUIET_S = 0  # tests that need the quiet period set it themselves
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from onfh_site.celery import app as _celery_app  # noqa: E402

_celery_app.conf.broker_url = "memory://"
_celery_app.conf.broker_transport_options = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _S3 is not None:
        _S3.stop()
    shutil.rmtree(_MEDIA, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_MEDIA}.sqlite3{suffix}").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _audit_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test its own checkpoint file, as it has its own database."""
    settings.ONFH_AUDIT_CHECKPOINT_FILE = (
        tmp_path_factory.mktemp("audit") / "audit-checkpoints.jsonl"
    )


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Rate-limit counters (the in-memory cache) start at zero in every test."""
    from django.core.cache import cache

    cache.clear()


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
import time as _time  # noqa: E402

from grading.management.commands._processes import Stack  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class LivePortal(Stack):
    """manage.py, daphne and celery workers as real subprocesses with ``env``, one torch
    thread each; plus the API calls the tests make."""

    site_code = "live"

    def __init__(self, var_dir: Path, env: dict[str, str]) -> None:
        super().__init__(var_dir, {"ONFH_TORCH_THREADS": "1", "LOG_LEVEL": "INFO", **env})

    def start_worker(  # type: ignore[override]
        self, name: str, *, queues: str = "gpu,default", extra: tuple[str, ...] = ("--pool", "solo")
    ) -> _subprocess.Popen[bytes]:
        """A worker, without waiting for it: the tests wait for what it does."""
        return super().start_worker(name, queues, extra=extra, wait=False)

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


# --- a missing peer fails, never skips -----------------------------------------------------
# Every peer the tests drive (PostgreSQL, Redis, Orthanc, dcmtk, dicom3tools, Chromium, nginx,
# the OIDC provider, the S3 server, the shipped weights) is installed and started by `make test`
# and .ci/run. A test that skips because one is missing would hide a broken set-up, so a skip
# is reported as a failure unless its reason is one of these, which no install can change.
_ALLOWED_SKIPS = (
    "no CUDA device",  # a GPU test on a CPU machine
    "set ONFH_SCREENSHOT_DIR",  # screenshots for the docs are written on request
    "this seed's slice misses most of the head",  # data-dependent, decided by the seed
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or getattr(report, "wasxfail", None) is not None:
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(allowed in reason for allowed in _ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped, but a missing peer must fail the suite: {reason}"
