"""``seed_demo`` prepares every use case through the real services, and a second run
changes nothing (no row, no audit event, the same share link)."""

from __future__ import annotations

import io
import re

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import Client

from grading.models import Analysis, HipResult, Study

pytestmark = pytest.mark.django_db(transaction=True)


def _row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


def test_seed_demo_prepares_every_use_case_once(settings, tmp_path) -> None:
    from grading.consults.models import SecondOpinionRequest
    from grading.teaching.models import Attempt, Case, Collection

    settings.ONFH_DEMO_PASSWORD = "demo-pass-123"
    settings.VAR_DIR = tmp_path
    settings.ONFH_INGEST_QUIET_S = 1.0  # the seed waits for its uploads to go quiet, as in make run
    out = io.StringIO()
    call_command("seed_demo", "--base-url", "http://portal.test", stdout=out)

    # The worklist's states: done, flagged (a hip flag), failed with a reason, queued.
    status = {s.patient_id: s.status for s in Study.objects.all()}
    assert status["DEMO-001"] == "done"
    assert status["DEMO-006"] == "failed"
    assert status["DEMO-007"] == status["DEMO-008"] == "queued"
    flagged = HipResult.objects.filter(analysis__series__study__patient_id="DEMO-005")
    assert any(hip.flags for hip in flagged)
    error = Analysis.objects.get(series__study__patient_id="DEMO-006").error
    assert "could not be read" in error

    # Teaching: every grade among the cases, the student enrolled, one attempt scored,
    # one case not tried.
    collection = Collection.objects.get(site__code="demo")
    cases = list(Case.objects.filter(collection=collection))
    assert 4 <= len(cases) <= 6
    grades = {hip["grade"] for case in cases for hip in case.reference_hips}
    assert grades == {"none", "mild", "moderate", "severe"}
    assert collection.students.filter(username="demo_student").exists()
    attempt = Attempt.objects.get(student__username="demo_student")
    assert 0 < attempt.score < 1 and attempt.dice is not None and 0 < attempt.dice < 1
    assert any(not Attempt.objects.filter(case=case).exists() for case in cases)
    for case in cases:  # de-identified: no source patient id in the case's own UIDs
        assert case.study_instance_uid != case.source_study.study_instance_uid

    # Consults: one open from the second site to the demo site, one answered.
    opened = SecondOpinionRequest.objects.get(status="open")
    assert opened.requester.username == "second_clinician"
    assert opened.study.site.code == "second" and opened.consultant_site.code == "demo"
    answered = SecondOpinionRequest.objects.get(status="answered")
    assert answered.requester.username == "demo" and answered.answers.count() == 1

    # The printed start-up text: whom to log in as, and a live patient link.
    text = out.getvalue()
    for user in ("demo", "second_clinician", "demo_teacher", "demo_student", "demo_admin"):
        assert re.search(rf"\s{user}\s+http://portal\.test/", text), user
    # The token travels in the fragment; the page POSTs it back.
    token = re.search(r"http://portal\.test/p/#([\w-]+)", text).group(1)
    page = Client().post("/p/", {"token": token})
    assert page.status_code == 200 and "gone" not in page.content.decode().lower()

    first = _row_counts()  # after the page view, which the portal audits
    out2 = io.StringIO()
    call_command("seed_demo", "--base-url", "http://portal.test", stdout=out2)
    assert _row_counts() == first
    assert f"/p/#{token}" in out2.getvalue()
