"""A large body is refused on its headers by a real daphne: 401 without valid credentials,
413 over ONFH_MAX_UPLOAD_BYTES, before the body is read (no temporary file grows, the
server's memory does not). Valid credentials still reach Django."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync

from onfh_site.body_guard import LINGER_S, BodyGuardMiddleware
from tests.conftest import LivePortal

pytestmark = pytest.mark.timeout(300)
GIB = 1024**3
LIMIT = 64 * 1024**2


@pytest.fixture(scope="module")
def daphne(tmp_path_factory: pytest.TempPathFactory):
    var = tmp_path_factory.mktemp("guard") / "var"
    spool = var / "spool"  # daphne/Twisted spool request bodies here (TMPDIR)
    spool.mkdir(parents=True)
    live = LivePortal(var, {"TMPDIR": str(spool), "ONFH_MAX_UPLOAD_BYTES": str(LIMIT)})
    live.manage("migrate", "--noinput", "-v", "0")
    live.create_user()
    live.start_server()
    try:
        yield live, spool
    finally:
        live.stop_all()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _spooled(spool: Path) -> int:
    # Twisted's TemporaryFile is unlinked at once: count what daphne holds open there.
    total = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
    return total


def _send_headers(port: int, length: int, extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            "POST /api/uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=onfhboundary\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n"
        ).encode()
    )
    return sock


def _answer_without_body(sock: socket.socket, wait: float = 10) -> bytes:
    """What the server says with no byte of the body sent (within ``wait`` s)."""
    sock.settimeout(wait)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data


def _push_body(sock: socket.socket, total: int) -> int:
    """Try to send ``total`` bytes; how many went before the server closed."""
    block = b"x" * (1024 * 1024)
    sent = 0
    sock.settimeout(10)
    try:
        while sent < total:
            sent += sock.send(block)
    except OSError:
        pass
    return sent


def _server_pid(live: LivePortal) -> int:
    return live.processes["daphne"].pid


def test_unauthenticated_gib_refused_on_headers(daphne):
    live, spool = daphne
    pid = _server_pid(live)
    rss_before = _rss_kib(pid)
    sock = _send_headers(live.port, GIB)
    answer = _answer_without_body(sock)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    sent = _push_body(sock, 512 * 1024**2)
    sock.close()
    assert sent < 256 * 1024**2, f"the server kept reading: {sent} bytes went"
    time.sleep(LINGER_S + 1.0)  # the refused connection is dropped after its short linger
    assert _rss_kib(pid) - rss_before < 64 * 1024  # KiB: no body held in memory
    assert _spooled(spool) == 0
    # No spool file held open (daphne spools to an unlinked temporary file).
    held = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert not [h for h in held if h.endswith("(deleted)") or h.startswith(str(spool))], held
    assert "refused POST /api/uploads/" in live.log("daphne")


def test_a_forged_token_is_refused_on_headers(daphne):
    live, _ = daphne
    sock = _send_headers(live.port, GIB, "Authorization: Token not-a-real-token\r\n")
    assert _answer_without_body(sock).startswith(b"HTTP/1.1 401")
    sock.close()


def test_a_chunked_body_of_unknown_length_needs_credentials_too(daphne):
    live, _ = daphne
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    sock.sendall(
        b"POST /api/uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    assert _answer_without_body(sock).startswith(b"HTTP/1.1 401")
    sock.close()


def test_over_the_limit_refused_with_413_even_with_a_valid_token(daphne):
    live, _ = daphne
    sock = _send_headers(live.port, LIMIT + 1, f"Authorization: Token {live.token}\r\n")
    assert _answer_without_body(sock).startswith(b"HTTP/1.1 413")
    sock.close()


def test_valid_credentials_reach_django(daphne):
    live, _ = daphne
    # Django's own answers: no files in the upload; a session POST without its CSRF token.
    for credential, expected in (
        (f"Authorization: Token {live.token}\r\n", b"HTTP/1.1 400"),
        (f"Cookie: sessionid={live.session}\r\n", b"HTTP/1.1 403"),
    ):
        body = b"--onfhboundary--\r\n" + b" " * (2 * 1024 * 1024)
        sock = _send_headers(live.port, len(body), credential)
        assert _answer_without_body(sock, wait=2) == b""  # it waits for the body
        sock.sendall(body)
        sock.settimeout(60)
        answer = sock.recv(65536)
        sock.close()
        assert answer.startswith(expected), answer[:300]
        assert b"credentials" not in answer


@pytest.mark.parametrize(
    ("request_head", "expected"),
    [
        # A URL over Twisted's 16 KiB line limit: the connection was dropped without a
        # word before (the client saw an empty reply).
        (f"GET /api/studies/?x={'a' * 20_000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
        (f"GET /api/studies/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'b' * 20_000}\r\n\r\n", 431),
    ],
)
def test_an_overlong_request_or_header_line_gets_an_answer(daphne, request_head, expected):
    live, _ = daphne
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    sock.sendall(request_head.encode())
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    assert answer.startswith(f"HTTP/1.1 {expected} ".encode()), answer[:200]
    assert b'"detail": "The ' in answer and b"over 16384 bytes" in answer


def test_the_asgi_middleware_answers_without_reading_the_body(db):
    """For ASGI servers that stream bodies (uvicorn, hypercorn) the same rule runs in front
    of Django: ``receive`` is never called."""
    sent: list[dict] = []

    async def app(scope, receive, send):  # Django would be here
        raise AssertionError("the application was called")

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/uploads/",
        "headers": [(b"content-length", str(GIB).encode())],
    }
    async_to_sync(BodyGuardMiddleware(app))(scope, receive, send)
    assert sent[0]["status"] == 401
