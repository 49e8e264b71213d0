"""Start the test OpenID Connect provider (tests/peers/oidc_provider, panva's
oidc-provider run by node) on a free loopback port. A missing node or missing
node_modules fails the test: CI installs them (``make test-peers``)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from grading.management.commands._processes import free_port

HERE = Path(__file__).resolve().parent / "oidc_provider"


class Provider(NamedTuple):
    issuer: str
    client_id: str
    client_secret: str
    log: Path

    def portal_env(self) -> dict[str, str]:
        """The environment that points the portal at this provider (docs/operations.md)."""
        return {
            "ONFH_OIDC_CLIENT_ID": self.client_id,
            "ONFH_OIDC_CLIENT_SECRET": self.client_secret,
            "ONFH_OIDC_ISSUER": self.issuer,
            "ONFH_OIDC_AUTHORIZATION_ENDPOINT": f"{self.issuer}/auth",
            "ONFH_OIDC_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "ONFH_OIDC_USERINFO_ENDPOINT": f"{self.issuer}/me",
            "ONFH_OIDC_JWKS_ENDPOINT": f"{self.issuer}/jwks",
        }


@contextlib.contextmanager
def oidc_provider(*, users: list[dict], redirect_uris: list[str]) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "The test OIDC provider is not installed: apt-get install nodejs npm; "
            "cd tests/peers/oidc_provider && npm ci  (or: make test-peers)"
        )
    folder = Path(tempfile.mkdtemp(prefix="onfh-oidc-"))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    provider = Provider(issuer, "onfh-portal", "test-secret-" + folder.name[-8:], folder / "log")
    config = {
        "port": port,
        "issuer": issuer,
        "clients": [
            {
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "redirect_uris": redirect_uris,
            }
        ],
        "users": users,
    }
    (folder / "config.json").write_text(json.dumps(config))
    with provider.log.open("wb") as out:
        process = subprocess.Popen(
            [node, str(HERE / "server.mjs"), str(folder / "config.json")],
            cwd=HERE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                url = f"{issuer}/.well-known/openid-configuration"
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                    assert json.load(answer)["issuer"] == issuer
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the OIDC provider did not start:\n{provider.log.read_text()}")
                time.sleep(0.2)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
