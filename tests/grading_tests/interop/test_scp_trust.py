"""Who the receiver trusts (issue 13 item 6): a remote AE needs an address, or TLS with
a client certificate naming it; the receiver listens on loopback unless told otherwise.
Real clients: dcmtk's echoscu and pynetdicom over TLS (certificates made by openssl)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from grading.interop.management.commands.dicom_scp import Command
from grading.interop.models import RemoteAE
from grading.interop.scp import StorageSCP, server_ssl_context
from tests.grading_tests.factories import SiteFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _echo(port: int, aet: str, tls: ssl.SSLContext | None = None) -> bool:
    ae = AE(ae_title=aet)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 10
    kwargs = {"tls_args": (tls, None)} if tls else {}
    assoc = ae.associate("127.0.0.1", port, ae_title="ONFH", **kwargs)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


def test_a_remote_ae_without_an_address_is_not_trusted_in_the_clear(db) -> None:
    site = SiteFactory(code="north")
    RemoteAE.objects.create(ae_title="NOADDR", site=site)
    RemoteAE.objects.create(ae_title="WITHADDR", site=site, address="127.0.0.1")
    scp = StorageSCP(ae_title="ONFH", port=0)
    scp.start()
    try:
        assert scp.host == "127.0.0.1"  # loopback unless told otherwise
        assert not _echo(scp.port, "NOADDR")
        assert _echo(scp.port, "WITHADDR")
    finally:
        scp.stop()


def test_the_command_listens_on_loopback_by_default(settings) -> None:
    parser = Command().create_parser("manage.py", "dicom_scp")
    options = parser.parse_args([])
    assert options.host == "127.0.0.1" and options.port == settings.ONFH_SCP_PORT


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, the receiver's certificate and two client certificates (CN = AE title)."""
    files = {name: folder / name for name in ("ca.key", "ca.pem")}
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        str(files["ca.key"]),
        "-out",
        str(files["ca.pem"]),
    )
    for name in ("server", "SCANNER2", "OTHER"):
        key, csr, pem = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(files["ca.pem"]),
            "-CAkey",
            str(files["ca.key"]),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            str(pem),
        )
        files[f"{name}.key"], files[f"{name}.pem"] = key, pem
    return files


def _client_context(files: dict[str, Path], name: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files["ca.pem"]))
    context.check_hostname = False
    if name:
        context.load_cert_chain(str(files[f"{name}.pem"]), str(files[f"{name}.key"]))
    return context


def test_over_tls_a_client_certificate_naming_the_ae_replaces_the_address(db, tmp_path) -> None:
    files = _certificates(tmp_path)
    site = SiteFactory(code="north")
    RemoteAE.objects.create(ae_title="SCANNER2", site=site)
    context = server_ssl_context(
        cert=str(files["server.pem"]), key=str(files["server.key"]), client_ca=str(files["ca.pem"])
    )
    scp = StorageSCP(ae_title="ONFH", port=0, ssl_context=context)
    scp.start()
    try:
        assert _echo(scp.port, "SCANNER2", _client_context(files, "SCANNER2"))
        # A certificate for another name, or none at all, is not enough.
        assert not _echo(scp.port, "SCANNER2", _client_context(files, "OTHER"))
        assert not _echo(scp.port, "SCANNER2", _client_context(files, None))
        assert not _echo(scp.port, "SCANNER2")  # in the clear
    finally:
        scp.stop()
