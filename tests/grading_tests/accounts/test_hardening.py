"""Production hardening: ``manage.py check --deploy`` is clean with the production switch;
the embedded mode keeps plain-http defaults; CSP and the proxy's https reach the pages."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.grading_tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[3]
_SERVICE_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ONFH_STORAGE", "DEBUG")


def _manage(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in _SERVICE_ENV and not k.startswith("ONFH_")
    }
    env.update(
        {"ONFH_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "onfh_site.settings", **extra}
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    done = _manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ONFH_PRODUCTION="1",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="portal.hospital.example",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_embedded_mode_keeps_plain_http_defaults(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_AGE)"
    )
    embedded = _manage(tmp_path, "shell", "-c", code)
    assert embedded.stdout.splitlines()[-1].split() == [
        "False",
        "False",
        "False",
        "0",
        str(8 * 3600),
    ]
    production = _manage(
        tmp_path, "shell", "-c", code, ONFH_PRODUCTION="1", SECRET_KEY=secrets.token_urlsafe(64)
    )
    assert production.stdout.splitlines()[-1].split() == [
        "True",
        "True",
        "True",
        "31536000",
        str(8 * 3600),
    ]


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_with_a_nonce_for_inline_scripts():
    client = Client()
    client.force_login(UserFactory())
    answer = client.get("/")
    policy = answer["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval' 'nonce-" in policy
    assert "worker-src 'self' blob:" in policy and "object-src 'none'" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    html = answer.content.decode()
    # Every inline script on the page carries the nonce (the consult badge's does).
    inline = [chunk for chunk in html.split("<script")[1:] if "src=" not in chunk.split(">")[0]]
    assert inline and all(f'nonce="{nonce}"' in chunk.split(">")[0] for chunk in inline)
    assert "application/json" in html or inline


@pytest.mark.django_db
def test_share_links_are_https_behind_a_tls_proxy(settings):
    from django.test import RequestFactory

    from grading.explanations.selectors import share_link_url

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["portal.hospital.example"]
    request = RequestFactory().post(
        "/x/", HTTP_HOST="portal.hospital.example", HTTP_X_FORWARDED_PROTO="https"
    )
    assert share_link_url(request=request, token="abc") == "https://portal.hospital.example/p/#abc"


def test_sessions_end_within_a_working_day(settings):
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600 < 14 * 24 * 3600
