"""Live WebSocket messages stop when access ends (issue 13, item 4), on a real daphne
and real sockets: a member whose membership is removed, a user whose share is
withdrawn and a consultant whose consult is closed get no more pushes of the study on
the socket they opened before; a clinician who still sees it does."""

from __future__ import annotations

import json

import pytest

from tests.conftest import LivePortal, WebSocketClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SETUP = """
import json
from datetime import timedelta
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from grading.consults.models import SecondOpinionRequest
from grading.models import Membership, Site, Study, StudyShare

site = Site.objects.get(code="live")
other = Site.objects.create(code="elsewhere", name="Elsewhere")
clinician = User.objects.get(username="live")
study = Study.objects.create(site=site, study_instance_uid="2.25.4242", patient_name="DOE^J",
                             patient_id="P1", status="running")
member = User.objects.create(username="member")
Membership.objects.create(user=member, site=site, role="clinician")
sharee = User.objects.create(username="sharee")
Membership.objects.create(user=sharee, site=other, role="clinician")
StudyShare.objects.create(study=study, user=sharee, shared_by=clinician)
consultant = User.objects.create(username="consultant")
Membership.objects.create(user=consultant, site=other, role="radiologist")
SecondOpinionRequest.objects.create(study=study, requester=clinician, consultant=consultant,
    question="Is this necrosis?", expires_at=timezone.now() + timedelta(days=1))
sessions = {}
for user in (member, sharee, consultant):
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    sessions[user.username] = session.session_key
print("SETUP", json.dumps({"study": study.pk, "sessions": sessions}))
"""

NOTIFY = "from grading.services import study_status_notify\nstudy_status_notify(study_id={})\n"

END_ACCESS = """
from django.utils import timezone
from grading.consults.models import SecondOpinionRequest
from grading.models import Membership, StudyShare
Membership.objects.filter(user__username="member").delete()
StudyShare.objects.filter(user__username="sharee").delete()
SecondOpinionRequest.objects.update(status="closed", closed_at=timezone.now())
"""


def _next_status(socket: WebSocketClient, study_id: int, timeout: float) -> dict | None:
    while True:
        message = socket.receive_json(timeout=timeout)
        if message is None or (
            message.get("type") == "study.status" and message["study_id"] == study_id
        ):
            return message


def test_pushes_stop_when_membership_share_or_consult_ends(tmp_path) -> None:
    portal = LivePortal(tmp_path / "var", {"ONFH_OUTBOX_POLL_S": "0.2"})
    portal.manage("migrate", "--noinput", "-v", "0")
    portal.create_user()
    out = portal.manage("shell", "-c", SETUP)
    setup = json.loads(out.split("SETUP", 1)[1])
    study_id = setup["study"]
    cookies = {"clinician": portal.session, **setup["sessions"]}
    portal.start_server()
    sockets: dict[str, WebSocketClient] = {}
    try:
        for who, session in cookies.items():
            sockets[who] = WebSocketClient(
                portal.port,
                "/ws/studies/",
                cookie=f"sessionid={session}",
                origin=f"http://127.0.0.1:{portal.port}",
            )
            assert sockets[who].status == 101, who
        portal.manage("shell", "-c", NOTIFY.format(study_id))
        for who, socket in sockets.items():
            message = _next_status(socket, study_id, timeout=20)
            assert message is not None and message["status"] == "running", who

        portal.manage("shell", "-c", END_ACCESS)
        portal.manage("shell", "-c", NOTIFY.format(study_id))
        # The one who still sees the study gets the push: it was sent.
        assert _next_status(sockets["clinician"], study_id, timeout=20) is not None
        for who in ("member", "sharee", "consultant"):
            assert _next_status(sockets[who], study_id, timeout=3) is None, who
    finally:
        for socket in sockets.values():
            socket.close()
        portal.stop_all()
