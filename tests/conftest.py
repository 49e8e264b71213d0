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
settings.CELERY_BROKER_URL = "memory://"
settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
settings.ONFH_PRELOAD_SEGMENTER = False
settings.ONFH_SWEEP_EVERY_S = 0
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from onfh_site.celery import app as _celery_app  # noqa: E402

_celery_app.conf.broker_url = "memory://"
_celery_app.conf.broker_transport_options = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_MEDIA, ignore_errors=True)


@pytest.fixture
def media_root() -> Path:
    return _MEDIA
