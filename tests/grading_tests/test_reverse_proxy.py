"""The production recipe's reverse proxy for real: Debian's nginx with the shipped
configuration (onfh_site/deploy/nginx-onfh.conf) and a self-signed certificate made
here, in front of daphne in production mode (ONFH_PRODUCTION=1)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from grading.management.commands._processes import free_port
from tests.conftest import LivePortal

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "onfh_site" / "deploy" / "nginx-onfh.conf"
LIMIT = 8 * 1024**2
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# A study with an explanation, for a share link made through the proxy.
_SETUP = """
import tempfile
from pathlib import Path
from unittest import mock
from django.contrib.auth import get_user_model
from grading.models import Site
from grading.services.ingest import upload_ingest
from grading.explanations.services import patient_explanation_create
from tests.grading_tests.apis.conftest import store_truth_analysis, uploaded, write_phantom_dicom
phantom = write_phantom_dicom(Path(tempfile.mkdtemp()), seed=11, n_slices=3)
user = get_user_model().objects.get(username="live")
with mock.patch("grading.tasks.study_ingest"):
    report = upload_ingest(user=user, site=Site.objects.get(code="live"),
                           files=uploaded(phantom.paths), client_address=None)
study = report.studies[0]
store_truth_analysis(series=study.series.get(), labels=phantom.labels)
study.refresh_from_db()
explanation = patient_explanation_create(user=user, study=study, note="", client_address=None)
print("EXPLANATION", explanation.pk)
"""


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "portal.crt", folder / "portal.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class Proxy:
    def __init__(self, live: LivePortal, https_port: int, http_port: int, cafile: Path) -> None:
        self.live = live
        self.https = f"https://127.0.0.1:{https_port}"
        self.http = f"http://127.0.0.1:{http_port}"
        self.tls = ssl.create_default_context(cafile=str(cafile))
        self.https_port = https_port

    def request(
        self, url: str, *, method: str = "GET", body: bytes | None = None, token: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Token {self.live.token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=body, method=method, headers=headers)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPSHandler(context=self.tls)
        )
        try:
            with opener.open(req, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: apt-get install nginx-light (make install-system)")
    folder = tmp_path_factory.mktemp("proxy")
    live = LivePortal(
        folder / "var",
        {
            "ONFH_PRODUCTION": "1",
            "ONFH_TRUST_X_FORWARDED_FOR": "1",
            "SECRET_KEY": os.urandom(32).hex(),
            "ONFH_MAX_UPLOAD_BYTES": str(LIMIT),
        },
    )
    live.manage("migrate", "--noinput", "-v", "0")
    live.create_user()
    live.start_server()
    cert, key = _certificate(folder)
    https_port, http_port = free_port(), free_port()
    server = (
        TEMPLATE.read_text()
        .replace("@PORTAL_PORT@", str(live.port))
        .replace("@HTTP_LISTEN@", f"127.0.0.1:{http_port}")
        .replace("@HTTPS_LISTEN@", f"127.0.0.1:{https_port}")
        .replace("@SERVER_NAME@", "localhost 127.0.0.1")
        .replace("@CERTIFICATE@", str(cert))
        .replace("@CERTIFICATE_KEY@", str(key))
        .replace("@MAX_BODY@", f"{LIMIT // 1024**2}m")
    )
    assert "@" not in "".join(line.split("#")[0] for line in server.splitlines())
    (folder / "onfh.conf").write_text(server)
    temp = "\n".join(
        f"  {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"""{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  access_log {folder / "access.log"};
{temp}
  include {folder / "onfh.conf"};
}}
"""
    )
    test = subprocess.run(
        [NGINX, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stderr
    nginx = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "nginx.out").open("wb"),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, (
                    folder / "error.log"
                ).read_text()
                time.sleep(0.1)
        yield Proxy(live, https_port, http_port, cert)
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
        live.stop_all()


def test_https_page_with_hsts_and_secure_cookies(proxy):
    status, headers, _ = proxy.request(f"{proxy.https}/login/")
    assert status == 200
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
    assert "Secure" in headers["Set-Cookie"] and "csrftoken" in headers["Set-Cookie"]
    assert "Content-Security-Policy" in headers


def test_plain_http_is_redirected_to_https(proxy):
    status, headers, _ = proxy.request(f"{proxy.http}/login/")
    assert status == 301 and headers["Location"].startswith("https://127.0.0.1")
    # Straight to daphne (no proxy saying https): the portal itself redirects.
    status, headers, _ = proxy.request(f"http://127.0.0.1:{proxy.live.port}/login/")
    assert status == 301 and headers["Location"].startswith("https://")


def test_body_over_the_limit_refused_by_nginx(proxy):
    status, _, _ = proxy.request(
        f"{proxy.https}/api/uploads/", method="POST", body=b"x" * (LIMIT + 1), token=True
    )
    assert status == 413


def test_unauthenticated_body_refused_by_the_portal_through_nginx(proxy):
    status, _, body = proxy.request(
        f"{proxy.https}/api/uploads/", method="POST", body=b"x" * (4 * 1024**2)
    )
    assert status == 401 and b"credentials" in body


def test_share_links_are_built_as_https(proxy):
    out = proxy.live.manage("shell", "-c", _SETUP)
    explanation = next(x.split()[1] for x in out.splitlines() if x.startswith("EXPLANATION"))
    status, _, body = proxy.request(
        f"{proxy.https}/api/explanations/{explanation}/links/",
        method="POST",
        body=json.dumps({"days": 3}).encode(),
        token=True,
    )
    assert status == 201, body
    url = json.loads(body)["url"]
    assert url.startswith(f"https://127.0.0.1:{proxy.https_port}/p/#"), url
