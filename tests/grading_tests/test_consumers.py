"""WebSocket ``ws/studies/``: who gets which pushes, through the DB outbox (embedded mode)
and through channels-redis (production mode).

Every wait is for an event (a message arriving, the relay saying it is running), never a
fixed sleep, so a loaded machine makes the tests slower, not red. The Redis test uses a
channel-layer prefix of its own per run, so parallel runs sharing the Redis server never
see each other's groups."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from grading.models import OutboxMessage
from grading.routing import websocket_urlpatterns
from grading.services import audit_record, study_status_notify
from grading.services.notify import outbox_relay_run
from tests.grading_tests.factories import StudyFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/studies/")
    communicator.scope["user"] = user
    return communicator


async def _receive_until(communicator, kind: str, timeout: float = 30.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await communicator.receive_json_from(timeout=max(0.05, deadline - loop.time()))
        if message["type"] == kind:
            return message


def test_anonymous_is_refused() -> None:
    async def run() -> None:
        communicator = _communicator(AnonymousUser())
        connected, code = await communicator.connect()
        assert not connected and code == 4401

    async_to_sync(run)()


def test_frames_that_are_not_json_text_get_an_error_and_the_socket_stays_open(scenario) -> None:
    # Found by probing the running portal: each of these closed the socket with 1011
    # (internal error) and a traceback in the log.
    async def run() -> None:
        communicator = _communicator(scenario.clinician)
        assert (await communicator.connect())[0]
        await communicator.send_to(text_data="not json")
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "error",
            "detail": "The frame is not valid JSON.",
        }
        await communicator.send_to(text_data="[" * 100_000)
        assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
        await communicator.send_to(bytes_data=b"\x00\x01")
        assert await communicator.receive_json_from(timeout=5) == {
            "type": "error",
            "detail": "Send JSON text frames.",
        }
        # Still open and answering.
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
        await communicator.disconnect()

    async_to_sync(run)()


def test_outbox_relay_pushes_status_and_audit_to_site_members_only(scenario) -> None:
    study = StudyFactory(site=scenario.site, status="running", progress_done=2, progress_total=6)
    own = StudyFactory(site=scenario.other_site)

    async def run() -> None:
        member = _communicator(scenario.student)
        outsider = _communicator(scenario.outsider)
        # connect() returns once the relay runs: every row written from now on is relayed.
        assert (await member.connect())[0] and (await outsider.connect())[0]
        # What the worker process does: it cannot reach this process's layer, so it
        # writes outbox rows; the relay started by connect() picks them up.
        from channels.db import database_sync_to_async

        await database_sync_to_async(study_status_notify)(study_id=study.pk)
        message = await _receive_until(member, "study.status")
        assert message == {
            "type": "study.status",
            "study_id": study.pk,
            "status": "running",
            "progress": {"done": 2, "total": 6},
            "error": None,
            "failure_reason": None,
            "stalled": "no worker",  # no worker alive in this test
        }
        await database_sync_to_async(audit_record)(
            actor=scenario.clinician,
            action="grade.change",
            object_type="hip_result",
            object_id=1,
            study=study,
            after={"grade": "mild"},
            reason="looks mild",
        )
        audit = await _receive_until(member, "study.audit")
        assert audit["study_id"] == study.pk
        assert audit["event"]["action"] == "grade.change"
        assert audit["event"]["actor"] == "clin" and audit["event"]["reason"] == "looks mild"
        # The outsider got none of it: the first thing it receives is the status of a
        # study of its own site, notified after all of the above.
        await database_sync_to_async(study_status_notify)(study_id=own.pk)
        first = await _receive_until(outsider, "study.status")
        assert first["study_id"] == own.pk
        await member.disconnect()
        await outsider.disconnect()

    async_to_sync(run)()
    assert OutboxMessage.objects.count() >= 2


def test_shared_study_reaches_the_user_it_is_shared_with(scenario) -> None:
    from grading.services import study_share

    study = StudyFactory(site=scenario.site)
    study_share(
        user=scenario.clinician, study=study, with_user=scenario.outsider, client_address=None
    )

    async def run() -> None:
        outsider = _communicator(scenario.outsider)
        assert (await outsider.connect())[0]
        from channels.db import database_sync_to_async

        await database_sync_to_async(study_status_notify)(study_id=study.pk)
        message = await _receive_until(outsider, "study.status")
        assert message["study_id"] == study.pk
        await outsider.disconnect()

    async_to_sync(run)()


def test_relay_forwards_only_rows_written_after_it_started(scenario) -> None:
    study = StudyFactory(site=scenario.site)
    study_status_notify(study_id=study.pk)  # before the relay: not replayed

    async def run() -> list:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(f"site-{scenario.site.pk}", channel)
        ready = asyncio.Event()
        task = asyncio.ensure_future(outbox_relay_run(poll_s=0.05, ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        from channels.db import database_sync_to_async

        await database_sync_to_async(study_status_notify)(study_id=study.pk)
        got = [await asyncio.wait_for(layer.receive(channel), 30)]
        task.cancel()
        return got

    got = async_to_sync(run)()
    assert len(got) == 1 and got[0]["type"] == "study.status"


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_redis_layer_delivers_without_the_outbox(scenario, settings) -> None:
    # A prefix of this run's own: another branch's run on the same Redis joins groups of
    # the same names ("site-1"), and with a shared prefix it got this run's messages.
    prefix = f"onfh-test-{uuid.uuid4().hex}"
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/15"], "prefix": prefix},
        }
    }
    study = StudyFactory(site=scenario.site, status="done", progress_done=6, progress_total=6)

    async def run() -> None:
        member = _communicator(scenario.clinician)
        assert (await member.connect())[0]
        from channels.db import database_sync_to_async

        await database_sync_to_async(study_status_notify)(study_id=study.pk)
        message = await _receive_until(member, "study.status")
        assert message["status"] == "done" and message["progress"] == {"done": 6, "total": 6}
        await member.disconnect()
        await get_channel_layer().flush()  # only this run's keys: they carry its prefix

    async_to_sync(run)()
    assert not OutboxMessage.objects.exists()


def test_full_asgi_app_authenticates_by_session_cookie(scenario, settings, client) -> None:
    from onfh_site.asgi import application

    client.force_login(scenario.clinician)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def run() -> None:
        communicator = WebsocketCommunicator(
            application,
            "/ws/studies/",
            headers=[
                (b"cookie", cookie.encode()),
                (b"origin", b"http://127.0.0.1:8000"),
                (b"host", b"127.0.0.1:8000"),
            ],
        )
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=2) == {"type": "pong"}
        await communicator.disconnect()
        stranger = WebsocketCommunicator(
            application,
            "/ws/studies/",
            headers=[(b"cookie", cookie.encode()), (b"origin", b"http://evil.example")],
        )
        connected, _ = await stranger.connect()
        assert not connected

    async_to_sync(run)()
