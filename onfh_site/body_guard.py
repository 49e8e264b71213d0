"""Refuse a request body on its headers, before a byte of it is read.

Django (and daphne, which buffers a whole body into a temporary file before it calls the
application) would otherwise read an unauthenticated 1 GiB upload in full before
answering 401, and a body over ``ONFH_MAX_UPLOAD_BYTES`` in full before answering 413.

- ``body_refusal`` is the rule: a body that is large (over ``ONFH_ANONYMOUS_BODY_BYTES``,
  or of unknown length) without a valid API token or signed-in session -> 401; with them,
  a declared length over ``ONFH_MAX_UPLOAD_BYTES`` -> 413. Small bodies (sign-in forms, the patient
  page's POST) pass: Django checks them as usual.
- ``BodyGuardMiddleware`` applies it in front of Django for any ASGI server that streams
  bodies (uvicorn, hypercorn): it answers without calling ``receive``.
- ``install_daphne_hook`` applies it inside daphne when the headers are in (Twisted's
  ``gotLength``): reading from the socket pauses while the credentials are checked, then
  the connection gets its answer and is closed, or reading resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async

logger = logging.getLogger("onfh.body_guard")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class Refusal(NamedTuple):
    status: int
    reason: str
    detail: str


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _cookie(headers: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    from http.cookies import SimpleCookie

    raw = b"; ".join(v for k, v in headers if k.lower() == b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no credential
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _credentials_valid(token: str | None, session_key: str | None) -> bool:
    """A valid API token (checked by the configured DRF token authentication, so expiry
    or revocation rules apply) or a session with a signed-in, active user. Runs in a
    worker thread of its own, which keeps no database connection."""
    from django.db import connections

    try:
        return _check_credentials(token, session_key)
    finally:
        connections.close_all()


def _check_credentials(token: str | None, session_key: str | None) -> bool:
    from django.conf import settings
    from django.contrib.auth import SESSION_KEY, get_user_model
    from rest_framework import exceptions
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.settings import api_settings

    if token:
        for auth_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
            if isinstance(auth_class, type) and issubclass(auth_class, TokenAuthentication):
                try:
                    user, _ = auth_class().authenticate_credentials(token)
                except exceptions.AuthenticationFailed:
                    continue
                if user.is_active:
                    return True
    if session_key:
        from importlib import import_module

        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user_id = store.get(SESSION_KEY)
        if user_id is not None:
            return get_user_model().objects.filter(pk=user_id, is_active=True).exists()
    return False


async def body_refusal(
    *, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> Refusal | None:
    """The answer a request gets on its headers alone, or None to let it through."""
    from django.conf import settings

    if method.upper() not in _BODY_METHODS:
        return None
    raw_length = _header(headers, b"content-length")
    try:
        length = int(raw_length) if raw_length is not None else None
    except ValueError:
        return Refusal(400, "Bad Request", "Content-Length is not a number.")
    small = settings.ONFH_ANONYMOUS_BODY_BYTES
    if length is not None and length <= small:
        return None
    authorization = (_header(headers, b"authorization") or b"").decode("latin-1").split()
    token = authorization[1] if len(authorization) == 2 and authorization[0] == "Token" else None
    session_key = _cookie(headers, settings.SESSION_COOKIE_NAME)
    if not (token or session_key):
        return Refusal(401, "Unauthorized", "Authentication credentials were not provided.")
    if not await sync_to_async(_credentials_valid, thread_sensitive=False)(token, session_key):
        return Refusal(401, "Unauthorized", "Invalid or expired credentials.")
    limit = settings.ONFH_MAX_UPLOAD_BYTES
    if length is not None and length > limit:
        return Refusal(413, "Content Too Large", f"The body is over the limit of {limit} bytes.")
    return None


def _answer_bytes(refusal: Refusal) -> tuple[list[tuple[bytes, bytes]], bytes]:
    import json

    body = json.dumps({"detail": refusal.detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b"Token"))
    return headers, body


def _log(refusal: Refusal, method: str, path: str, length: bytes | None) -> None:
    logger.warning(
        "refused %s %s (%s bytes declared) with %d before reading the body: %s",
        method,
        path.split("?")[0],
        (length or b"?").decode("latin-1"),
        refusal.status,
        refusal.detail,
    )


class BodyGuardMiddleware:
    """ASGI middleware: ``body_refusal`` before the application reads the body."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = await body_refusal(
                method=scope["method"], path=scope["path"], headers=list(scope["headers"])
            )
            if refusal is not None:
                _log(
                    refusal,
                    scope["method"],
                    scope["path"],
                    _header(scope["headers"], b"content-length"),
                )
                headers, body = _answer_bytes(refusal)
                await send(
                    {"type": "http.response.start", "status": refusal.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


# After a refusal, how long and how much of the rest of the body is read and dropped
# before the connection closes (nginx's lingering close does the same): closing a socket
# with unread bytes makes the kernel send a reset, and a reverse proxy still streaming the
# body then answers 502 instead of our 401/413. Nothing read here is kept.
LINGER_S = 1.0
LINGER_BYTES = 16 * 1024**2


def _linger_then_close(request: Any, transport: Any) -> None:
    from twisted.internet import reactor

    request._onfh_linger_left = LINGER_BYTES
    try:
        transport.loseWriteConnection()  # the answer is complete: half-close
    except (AttributeError, NotImplementedError):
        transport.loseConnection()
        return
    transport.resumeProducing()
    reactor.callLater(LINGER_S, transport.loseConnection)  # type: ignore[attr-defined]


def install_daphne_hook() -> None:
    """Check ``body_refusal`` in daphne as soon as a request's headers are in."""
    try:
        from daphne import http_protocol
        from twisted.internet import defer
    except ImportError:  # another ASGI server: BodyGuardMiddleware does the work
        return
    request_class = http_protocol.WebRequest
    if getattr(request_class, "_onfh_body_guard", False):
        return
    original_got_length = request_class.gotLength
    original_chunk = request_class.handleContentChunk
    original_received = request_class.requestReceived

    def gotLength(self: Any, length: int | None) -> None:  # noqa: N802 - Twisted's name
        original_got_length(self, length)
        channel = self.channel
        method = (getattr(channel, "_command", b"") or b"").decode("latin-1")
        path = (getattr(channel, "_path", b"") or b"").decode("latin-1")
        headers = [
            (name.lower(), value)
            for name, values in self.requestHeaders.getAllRawHeaders()
            for value in values
        ]
        if method.upper() not in _BODY_METHODS:
            return
        self._onfh_held = True
        channel.transport.pauseProducing()  # read no more of the body while we check
        future = asyncio.ensure_future(body_refusal(method=method, path=path, headers=headers))

        def decided(refusal: Refusal | None) -> None:
            self._onfh_held = False
            transport = channel.transport
            if transport is None or getattr(transport, "disconnected", False):
                return
            if refusal is None:
                transport.resumeProducing()
                held = getattr(self, "_onfh_complete", None)
                if held is not None:
                    original_received(self, *held)
                return
            self._onfh_refused = True
            _log(refusal, method, path, _header(headers, b"content-length"))
            answer_headers, body = _answer_bytes(refusal)
            head = f"HTTP/1.1 {refusal.status} {refusal.reason}\r\n".encode() + b"".join(
                k + b": " + v + b"\r\n" for k, v in answer_headers
            )
            transport.write(head + b"\r\n" + body)
            _linger_then_close(self, transport)

        def failed(failure: Any) -> None:
            logger.error("body guard failed: %s", failure.getErrorMessage())
            decided(Refusal(503, "Service Unavailable", "Try again."))

        defer.Deferred.fromFuture(future).addCallbacks(decided, failed)

    def handleContentChunk(self: Any, data: bytes) -> None:  # noqa: N802
        if getattr(self, "_onfh_refused", False):
            # The answer is sent; what still comes is read and dropped, up to a cap.
            self._onfh_linger_left = getattr(self, "_onfh_linger_left", 0) - len(data)
            if self._onfh_linger_left <= 0 and self.channel.transport is not None:
                self.channel.transport.loseConnection()
            return
        original_chunk(self, data)

    def requestReceived(self: Any, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        if getattr(self, "_onfh_refused", False):
            return
        if getattr(self, "_onfh_held", False):
            # The whole body came with its headers: the application waits for the answer.
            self._onfh_complete = (command, path, version)
            return
        original_received(self, command, path, version)

    request_class.gotLength = gotLength
    request_class.handleContentChunk = handleContentChunk
    request_class.requestReceived = requestReceived
    request_class._onfh_body_guard = True
