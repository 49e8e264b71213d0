"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Run with ``daphne onfh_site.asgi:application``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onfh_site.settings")
# This is the web process: on PostgreSQL it gets a bounded connection pool (settings).
os.environ.setdefault("ONFH_ASGI_PROCESS", "1")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from grading.services.storage import storage_verify  # noqa: E402

storage_verify()  # S3 mode: refuse to start without the bucket (a clear sentence why)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from grading.routing import websocket_urlpatterns  # noqa: E402
from onfh_site.body_guard import BodyGuardMiddleware, install_daphne_hook  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Too large, or large without credentials: refused on the headers (body_guard).
        "http": BodyGuardMiddleware(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)


def _tune_daphne(buffer_bytes: int) -> None:
    """Two daphne defaults that cost seconds of CPU on a 40 MB zip upload.

    - Twisted parses every ``multipart/form-data`` POST body itself (with the ``email``
      package, decoding it to text) to fill ``request.args``, which daphne never reads;
      Django parses the body again. The first parse is switched off.
    - Daphne hands the body to Django in 8 KiB ASGI messages (5000 for 40 MB); its
      command line has no option for it. Chunks of ``buffer_bytes`` are used instead.

    Daphne imports this module before it builds its server, so a plain
    ``daphne ... onfh_site.asgi:application`` gets both.
    """
    try:
        from daphne import cli, http_protocol, server
    except ImportError:  # another ASGI server
        return

    request_init = http_protocol.WebRequest.__init__
    if not getattr(request_init, "_onfh_tuned", False):

        def init(self: http_protocol.WebRequest, *args: object, **kwargs: object) -> None:
            request_init(self, *args, **kwargs)
            self._parsePOSTFormSubmission = False

        init._onfh_tuned = True  # type: ignore[attr-defined]
        http_protocol.WebRequest.__init__ = init  # type: ignore[method-assign]

    class Server(server.Server):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("request_buffer_size", buffer_bytes)
            super().__init__(*args, **kwargs)

    if cli.CommandLineInterface.server_class is server.Server:
        cli.CommandLineInterface.server_class = Server


def _answer_overlong_lines() -> None:
    """Answer a request line or header line over Twisted's 16 KiB line limit instead of
    dropping the connection without a word (``LineReceiver.lineLengthExceeded``): a client
    sent a URL of 20 000 characters and got an empty reply. Now it gets 414 (the request
    line) or 431 (a header line) with the reason in JSON, then the connection closes."""
    try:
        from twisted.web import http
    except ImportError:  # another ASGI server: it answers these itself
        return
    if getattr(http.HTTPChannel.lineLengthExceeded, "_onfh_tuned", False):
        return

    def line_length_exceeded(self: Any, line: bytes) -> None:
        first_line = bool(getattr(self, "_HTTPChannel__first_line", True))
        status, phrase, what = (
            (414, "URI Too Long", "request line")
            if first_line
            else (431, "Request Header Fields Too Large", "header line")
        )
        body = json.dumps({"detail": f"The {what} is over {self.MAX_LENGTH} bytes."}).encode()
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.loseConnection()

    line_length_exceeded._onfh_tuned = True  # type: ignore[attr-defined]
    http.HTTPChannel.lineLengthExceeded = line_length_exceeded  # type: ignore[method-assign]


_tune_daphne(int(os.environ.get("ONFH_REQUEST_BUFFER_BYTES", 1024 * 1024)))
_answer_overlong_lines()
install_daphne_hook()  # daphne reads a whole body before it calls the application


def _warm_ingest_processes() -> None:
    """In a daphne server, start the upload check processes in the background at start-up
    (a first large upload would otherwise wait seconds for them)."""
    import sys
    import threading

    main = sys.modules.get("__main__")
    main_name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    if not (main_name.startswith("daphne") or os.path.basename(sys.argv[0]) == "daphne"):
        return
    from django.conf import settings

    from grading.services.dicom_checks import default_processes, dicom_checks_warm

    processes = settings.ONFH_INGEST_PROCESSES
    processes = default_processes() if processes < 0 else processes
    threading.Thread(
        target=dicom_checks_warm, args=(processes,), name="ingest-warm", daemon=True
    ).start()


_warm_ingest_processes()


def _start_web_sweeper() -> None:
    """In a daphne server, sweep for the work of dead workers here too: when every worker
    is gone, nobody else would (grading.services.workers)."""
    import sys

    main = sys.modules.get("__main__")
    main_name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    if not (main_name.startswith("daphne") or os.path.basename(sys.argv[0]) == "daphne"):
        return
    from grading.services.workers import web_sweeper_start

    web_sweeper_start()


_start_web_sweeper()
