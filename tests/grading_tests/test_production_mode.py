"""The production mode for real: PostgreSQL (a throw-away database), Redis as the Celery
broker and the channel layer, a ``gpu`` worker and a ``default`` worker as separate
``celery worker`` processes, daphne. Upload -> analyse -> result."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from tests.conftest import LivePortal, weights_available, write_phantom_series

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def _up(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = [pytest.mark.production, pytest.mark.timeout(900)]
needs_servers = pytest.mark.skipif(
    not (_up(PG) and _up(REDIS)), reason="needs PostgreSQL and Redis"
)
needs_weights = pytest.mark.skipif(not weights_available(), reason="no trained weights shipped yet")


def _admin_connect():
    import psycopg

    for user in ("postgres", None):
        try:
            kwargs = {"host": PG[0], "port": PG[1], "dbname": "test", "autocommit": True}
            if user:
                kwargs["user"] = user
            return psycopg.connect(**kwargs), user
        except psycopg.OperationalError:
            continue
    pytest.skip("cannot connect to PostgreSQL database 'test' with trust auth")


@pytest.fixture
def postgres_url():
    if not _up(PG):
        pytest.skip("needs PostgreSQL")
    conn, user = _admin_connect()
    name = f"onfh_prod_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{user + '@' if user else ''}{PG[0]}:{PG[1]}/{name}"
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def redis_prefix():
    import redis

    prefix = f"onfh-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis(host=REDIS[0], port=REDIS[1])
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)


@needs_servers
@needs_weights
@pytest.mark.slow
def test_upload_analyse_result_on_postgres_and_redis(postgres_url, redis_prefix, tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    portal = LivePortal(
        var,
        {
            "DATABASE_URL": postgres_url,
            "CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "ONFH_BROKER_KEY_PREFIX": f"{redis_prefix}:",
            "REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "ONFH_CHANNELS_PREFIX": f"{redis_prefix}-asgi",
            "SECRET_KEY": "production-mode-test-secret-key-not-for-real-use-0123456789",
        },
    )
    try:
        portal.manage("migrate", "--noinput", "-v", "0")
        out = portal.manage(
            "shell", "-c", "from django.db import connection; print(connection.vendor)"
        )
        assert out.strip().splitlines()[-1] == "postgresql"
        portal.create_user()
        portal.start_server()
        # As docs/operations.md runs them: one worker per GPU on `gpu`, others on `default`.
        portal.start_worker("gpu", queues="gpu", extra=("-c", "1", "--pool", "prefork"))
        portal.start_worker("default", queues="default", extra=("-c", "1", "--pool", "solo"))

        phantom = write_phantom_series(
            tmp_path / "a", seed=31, n_slices=12, necrosis={"right": "severe", "left": "mild"}
        )
        code, body = portal.api("POST", "/api/uploads/", files=phantom.paths)
        assert code == 201, body
        study_id = body["studies"][0]["id"]
        detail = portal.wait_for_study(study_id, {"done", "failed"})
        assert detail["status"] == "done", detail.get("error")
        assert detail["progress"] == {"done": 12, "total": 12}
        assert len(detail["slices"]) == 12 and detail["hips"]
        assert detail["series"][0]["analysis"]["model_version"].startswith("onfh-net")
        code, listing = portal.api("GET", "/api/studies/?status=done")
        assert code == 200 and [s["id"] for s in listing["results"]] == [study_id]
        assert "intact" in portal.manage("verify_audit")
        # Both queues really were used by their own worker.
        assert "grading.tasks.analyse_series" in portal.log("gpu")
        assert "grading.tasks.analysis_store" in portal.log("default")
    finally:
        portal.stop_all()


@pytest.mark.slow
def test_seed_demo_refuses_postgres(postgres_url, tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    portal = LivePortal(var, {"DATABASE_URL": postgres_url})
    portal.manage("migrate", "--noinput", "-v", "0")
    with pytest.raises(RuntimeError, match="not SQLite"):
        portal.manage("seed_demo", "--studies", "0")


def _settings_under(env: dict[str, str], tmp_path: Path) -> dict:
    import json
    import os
    import subprocess
    import sys

    from grading.management.commands._processes import MODE_VARS
    from tests.conftest import ROOT

    child_env = {k: v for k, v in os.environ.items() if k not in MODE_VARS}
    child_env.update({"ONFH_VAR_DIR": str(tmp_path / "var"), **env})
    code = (
        "import json; from onfh_site import settings as s\n"
        "print(json.dumps({'db': s.DATABASES['default']['ENGINE'],"
        " 'broker': s.CELERY_BROKER_URL, 'layer': s.CHANNEL_LAYERS['default']['BACKEND'],"
        " 'storage': s.STORAGES['default']['BACKEND'], 'debug': s.DEBUG,"
        " 'hosts': s.ALLOWED_HOSTS, 'max_upload': s.ONFH_MAX_UPLOAD_BYTES,"
        " 'device': s.ONFH_DEVICE, 'secret': s.SECRET_KEY}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_one_settings_module_switches_modes_from_the_environment(tmp_path: Path) -> None:
    embedded = _settings_under({}, tmp_path)
    assert embedded["db"] == "django.db.backends.sqlite3"
    assert embedded["broker"].startswith("filesystem://")
    assert embedded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert embedded["storage"] == "django.core.files.storage.FileSystemStorage"
    assert embedded["debug"] is False and embedded["device"] == "auto"
    # The embedded secret key is generated once and then read back.
    assert _settings_under({}, tmp_path)["secret"] == embedded["secret"]

    production = _settings_under(
        {
            "DATABASE_URL": "postgres://onfh@db.example:5432/onfh",
            "CELERY_BROKER_URL": "amqp://guest:guest@rabbit.example:5672//",
            "REDIS_URL": "redis://redis.example:6379/1",
            "ONFH_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": "onfh",
            "SECRET_KEY": "x" * 50,
            "DEBUG": "true",
            "ALLOWED_HOSTS": "portal.example.org",
            "ONFH_MAX_UPLOAD_BYTES": "1000",
            "ONFH_DEVICE": "cuda",
        },
        tmp_path,
    )
    assert production["db"] == "django.db.backends.postgresql"
    assert production["broker"].startswith("amqp://")
    assert production["layer"] == "channels_redis.core.RedisChannelLayer"
    assert production["storage"] == "storages.backends.s3.S3Storage"
    assert production["debug"] is True and production["hosts"] == ["portal.example.org"]
    assert production["max_upload"] == 1000 and production["device"] == "cuda"
    assert production["secret"] == "x" * 50
