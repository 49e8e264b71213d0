"""Sends whose worker message was lost (issue 15, left over): the sweep sends a send with no
progress for ``ONFH_PACS_SEND_STALE_S`` again, or fails it with the reason once its attempts
are used up, audited, and never doubles a send a live worker is running. The last test
sends the requeued results into a real Orthanc."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from grading.interop import services as pacs_services
from grading.interop import tasks as pacs_tasks
from grading.interop.models import PacsNode, PacsSend
from grading.models import AuditEvent
from grading.services import audit_verify
from grading.services.analyses import worker_name
from grading.services.workers import sweep_once
from tests.grading_tests.factories import SeriesFactory, UserFactory
from tests.grading_tests.interop.test_pacs import _add_node, _retrieve_and_analyse

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _send(*, state: str, minutes_ago: float, attempts: int = 0, worker: str = "") -> PacsSend:
    series = SeriesFactory()
    node = PacsNode.objects.create(
        name=f"PACS {series.pk}",
        ae_title="PACS",
        host="127.0.0.1",
        port=104,
        site=series.study.site,
    )
    send = PacsSend.objects.create(
        series=series,
        node=node,
        objects_requested=["sr"],
        requested_by=UserFactory(),
        state=state,
        attempts=attempts,
        worker=worker,
    )
    # QuerySet.update leaves auto_now alone: the send has not moved for that long.
    PacsSend.objects.filter(pk=send.pk).update(
        updated=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return send


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.fixture
def gone_worker() -> str:
    """A worker name of this host whose process has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{worker_name().rpartition(':')[0]}:{process.pid}"


@pytest.fixture
def live_worker():
    """A worker name of this host whose process is still running."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield f"{worker_name().rpartition(':')[0]}:{process.pid}"
    finally:
        process.kill()
        process.wait()


def test_a_queued_send_whose_message_was_lost_is_sent_again_once(settings) -> None:
    settings.ONFH_PACS_SEND_STALE_S = 600
    lost = _send(state="queued", minutes_ago=11)
    fresh = _send(state="queued", minutes_ago=2)
    waiting = _send(state="retrying", minutes_ago=30, attempts=2)
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as message:
        sweep_once(requeue=False)  # every process's sweep runs the send sweep
        assert sorted(c.kwargs["send_id"] for c in message.call_args_list) == sorted(
            [lost.pk, waiting.pk]
        )
        # A second sweep (another process's, a minute later) does not send them again.
        assert pacs_services.pacs_sends_sweep() == []
        assert message.call_count == 2
    lost.refresh_from_db(), fresh.refresh_from_db(), waiting.refresh_from_db()
    assert lost.state == "queued" and lost.error.startswith("Sent again: no progress for 11 min")
    assert "worker message was lost" in lost.error
    assert waiting.state == "queued" and "while waiting to retry" in waiting.error
    assert fresh.state == "queued" and fresh.error == ""
    requeued = _events("series.send_requeue")
    assert sorted(e.after["send"] for e in requeued) == sorted([lost.pk, waiting.pk])
    assert all(e.actor is None and "worker message was lost" in e.reason for e in requeued)
    assert audit_verify().ok


def test_a_send_whose_worker_died_is_taken_over_and_a_running_one_never_doubled(
    settings, gone_worker, live_worker
) -> None:
    settings.ONFH_PACS_SEND_STALE_S = 60
    settings.CELERY_TASK_TIME_LIMIT = 660
    dead = _send(state="sending", minutes_ago=5, attempts=1, worker=gone_worker)
    running = _send(state="sending", minutes_ago=5, attempts=1, worker=live_worker)
    mine = _send(state="sending", minutes_ago=30, attempts=1, worker=worker_name())
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as message:
        assert pacs_services.pacs_sends_sweep() == [dead.pk]
        # A late second message of the running send is dropped, not sent twice.
        pacs_services.pacs_send_run(send_id=running.pk)
    assert [c.kwargs for c in message.call_args_list] == [{"send_id": dead.pk}]
    dead.refresh_from_db(), running.refresh_from_db(), mine.refresh_from_db()
    assert dead.state == "queued" and dead.worker == "" and gone_worker in dead.error
    assert running.state == "sending" and running.attempts == 1 and running.worker == live_worker
    # The sweep never takes a send of its own process (a worker's sweep thread beside
    # the task that is sending it), however long it has been quiet.
    assert mine.state == "sending" and mine.attempts == 1
    [event] = _events("series.send_requeue")
    assert event.before == {"state": "sending", "attempts": 1, "worker": gone_worker}
    # A live process of this host keeps its send, however quiet (the solo pool has no
    # time limit: it may still be sending).
    PacsSend.objects.filter(pk=running.pk).update(updated=timezone.now() - timedelta(hours=2))
    with mock.patch.object(pacs_tasks.pacs_send, "delay"):
        assert pacs_services.pacs_sends_sweep() == []


def test_a_send_claimed_on_another_host_is_taken_over_after_the_time_limit(settings) -> None:
    settings.ONFH_PACS_SEND_STALE_S = 60
    settings.CELERY_TASK_TIME_LIMIT = 660
    elsewhere = _send(state="sending", minutes_ago=5, attempts=1, worker="gpu-node-7:4242")
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as message:
        assert pacs_services.pacs_sends_sweep() == []  # quiet, but within the time limit
        pacs_services.pacs_send_run(send_id=elsewhere.pk)  # a second message: dropped
        message.assert_not_called()
        PacsSend.objects.filter(pk=elsewhere.pk).update(
            updated=timezone.now() - timedelta(minutes=12)
        )
        assert pacs_services.pacs_sends_sweep() == [elsewhere.pk]
    elsewhere.refresh_from_db()
    assert elsewhere.state == "queued" and elsewhere.attempts == 1


def test_a_lost_send_with_its_attempts_used_up_fails_with_the_reason(settings) -> None:
    settings.ONFH_PACS_SEND_STALE_S = 600
    settings.ONFH_PACS_SEND_ATTEMPTS = 3
    send = _send(state="retrying", minutes_ago=20, attempts=3)
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as message:
        assert pacs_services.pacs_sends_sweep() == []
        assert pacs_services.pacs_sends_sweep() == []
    message.assert_not_called()
    send.refresh_from_db()
    assert send.state == "failed"
    assert send.error.startswith("Given up after 3 attempts: no progress for 20 min")
    [failed] = _events("series.send_failed")
    assert failed.after == {"send": send.pk, "node": send.node.name, "state": "failed"}
    assert "worker message was lost" in failed.reason
    pacs_services.pacs_send_run(send_id=send.pk)  # finished: a no-op
    send.refresh_from_db()
    assert send.attempts == 3


def test_a_requeued_send_reaches_orthanc_once(
    people, receiver_and_orthanc, mr_series, settings
) -> None:
    """The whole way: a send whose message never reached a worker, found by the sweep,
    sent again, and stored by a real Orthanc; the original message turning up late after
    that is a no-op."""
    _, orthanc = receiver_and_orthanc
    orthanc.upload(mr_series.paths)
    node = _add_node(people, orthanc)
    series = _retrieve_and_analyse(people, orthanc, node, mr_series)
    before = len(orthanc.instances_of(mr_series.study_instance_uid))
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as lost:
        send = pacs_services.series_send_request(
            user=people[1]["clin"], series=series, node=PacsNode.objects.get(), objects=["sr"]
        )
    lost.assert_called_once()  # the message went to a broker that lost it
    PacsSend.objects.filter(pk=send.pk).update(updated=timezone.now() - timedelta(minutes=16))
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as message:
        assert pacs_services.pacs_sends_sweep() == [send.pk]
    pacs_tasks.pacs_send(**message.call_args.kwargs)
    pacs_tasks.pacs_send(send_id=send.pk)  # the original message, late: nothing more
    send.refresh_from_db()
    assert send.state == "done" and send.attempts == 1 and send.error == ""
    after = orthanc.instances_of(mr_series.study_instance_uid)
    assert len(after) == before + 1
    assert [i["MainDicomTags"]["SOPInstanceUID"] for i in after].count(
        send.sent[0]["sop_instance_uid"]
    ) == 1
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="series.send")] == [
        "series.send",
        "series.send_requeue",
        "series.send_done",
    ]
