"""The public patient page in real Chromium: no login, the picture loads, no patient
identifier, and printing it (print CSS) gives one A4 page even with the longest note."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.viewer_tests.conftest import ROOT, Portal

pytestmark = pytest.mark.browser

# A graded study without running the network: the API tests' phantom (patient DOE^JANE,
# MRN-4711-XYZ) stored through the ingest (no analysis task sent) with the truth analysis.
_SETUP = """
import tempfile
from pathlib import Path
from unittest import mock
from django.contrib.auth import get_user_model
from grading.models import Site
from grading.services.ingest import upload_ingest
from grading.explanations.services import patient_explanation_create, share_link_create
from tests.grading_tests.apis.conftest import store_truth_analysis, uploaded, write_phantom_dicom

phantom = write_phantom_dicom(Path(tempfile.mkdtemp()), seed=11, n_slices=3)
user = get_user_model().objects.get(username="demo")
user.first_name, user.last_name = "Grace", "Hopper"
user.save()
with mock.patch("grading.tasks.study_ingest"):
    report = upload_ingest(user=user, site=Site.objects.get(code="demo"),
                           files=uploaded(phantom.paths), client_address=None)
study = report.studies[0]
store_truth_analysis(series=study.series.get(), labels=phantom.labels)
# the engine's 85 % interval, as step 14 stores it (the truth analysis has none)
from grading.models import HipResult
HipResult.objects.filter(analysis__series__study=study).update(ai_proportion_interval=[0.12, 0.2])
study.refresh_from_db()
note = ("See you in June. " * 80)[:1200]  # the longest note the editor takes
explanation = patient_explanation_create(user=user, study=study, note=note, client_address=None)
link, token = share_link_create(user=user, explanation=explanation, client_address=None)
print("RESULT", token, link.pk, explanation.grade)
"""


def _setup(portal: Portal) -> tuple[str, int, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "onfh_site.settings",
        "ONFH_VAR_DIR": str(portal.var_dir),
    }
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ONFH_STORAGE"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", _SETUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    _, token, link_id, grade = line.split()
    return token, int(link_id), grade


def test_patient_page_prints_on_one_page_without_identifiers(browser: Any, portal: Portal) -> None:
    from pypdf import PdfReader

    token, _, grade = _setup(portal)
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # no login
    page = context.new_page()
    # The link as the portal gives it: the token in the fragment, then posted by the page.
    with page.expect_response(
        lambda r: r.url.endswith("/p/") and r.request.method == "POST"
    ) as posted:
        page.goto(f"{portal.base_url}/p/#{token}")
    assert posted.value.status == 200
    page.wait_for_selector("#head-image")
    assert page.url == f"{portal.base_url}/p/#{token}"  # a reload or bookmark still works
    assert page.evaluate(
        "() => { const i = document.getElementById('head-image');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    text = page.inner_text("body")
    assert "Grace Hopper" in page.inner_text("#doctor")
    assert page.inner_text("#grade").lower().startswith(grade if grade != "none" else "no")
    assert "See you in June." in text
    assert "not a medical device" in text
    # how sure the measurement is, in words, beside the share and in the text
    assert page.inner_text("#proportion-range") == "(about 12 to 20 %)"
    assert "most likely about 12 to 20 %" in text
    shots = os.environ.get("ONFH_SCREENSHOT_DIR")
    if shots:
        page.screenshot(path=str(Path(shots) / "patient-1366x768.png"), full_page=True)
    for needle in ("DOE", "JANE", "MRN-4711", "1950"):
        assert needle not in text.upper().replace("DOES", ""), needle
    page.emulate_media(media="print")
    assert not page.is_visible(".actions")
    pdf = page.pdf(format="A4", print_background=True)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    context.close()
    # The server's access log (daphne's, in the portal's log) has the visit, not the token.
    log = portal.log.read_text()
    assert "POST /p/" in log
    assert token not in log
