"""The explanation editor: make one, make a link (shown once), revoke it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from grading.explanations.models import PatientExplanation, ShareLink
from tests.grading_tests.apis.conftest import World

pytestmark = pytest.mark.django_db


def test_editor_makes_an_explanation_and_a_link_and_revokes_it(world: World):
    doctor = Client()
    doctor.force_login(world.users["clinician"])
    url = f"/explanations/studies/{world.study.pk}/"
    assert doctor.get(url).status_code == 200
    assert doctor.post(url, {"note": "See you soon.", "side": ""}).status_code == 302
    explanation = PatientExplanation.objects.get()
    assert explanation.note == "See you soon."
    assert doctor.post(f"/explanations/{explanation.pk}/links/", {"days": "5"}).status_code == 302
    page = doctor.get(url).content.decode()
    public = re.search(r'id="new-link">[^<]*<a href="[^"]*/p/#([^"]+)"', page).group(1)
    assert Client().post("/p/", {"token": public}).status_code == 200
    # The link is shown only once.
    assert public not in doctor.get(url).content.decode()
    link = ShareLink.objects.get()
    assert doctor.post(f"/explanations/links/{link.pk}/revoke/").status_code == 302
    assert Client().post("/p/", {"token": public}).status_code == 410


def test_editor_is_for_doctors_of_the_site(world: World):
    for who, code in (("student", 403), ("foreign", 404)):
        client = Client()
        client.force_login(world.users[who])
        assert client.get(f"/explanations/studies/{world.study.pk}/").status_code == code


def test_the_patient_page_words_the_jic_type_and_the_stage(world: World):
    doctor = Client()
    doctor.force_login(world.users["clinician"])
    # Without a radiograph: the MRI alone cannot stage.
    assert (
        doctor.post(
            f"/explanations/studies/{world.study.pk}/", {"note": "", "side": "right"}
        ).status_code
        == 302
    )
    first = PatientExplanation.objects.get()
    assert first.stage == "MRI-positive, radiograph needed to stage" and first.jic_type == ""
    link = doctor.post(f"/explanations/{first.pk}/links/", {"days": "5"})
    assert link.status_code == 302
    page = doctor.get(f"/explanations/studies/{world.study.pk}/").content.decode()
    token = re.search(r'id="new-link">[^<]*<a href="[^"]*/p/#([^"]+)"', page).group(1)
    text = Client().post("/p/", {"token": token}).content.decode()
    assert "an X-ray (or CT) is needed" in text
    # A clinician records the JIC type and the radiograph's findings; a new explanation
    # says both in plain words.
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/classifications/",
        {
            "series_instance_uid": world.series.series_instance_uid,
            "side": "right",
            "jic_type": "C2",
            "findings": {"collapse_mm": 1.0},
            "reason": "coronal T1 and AP pelvis",
        },
        format="json",
    )
    assert answer.status_code == 201
    assert (
        doctor.post(
            f"/explanations/studies/{world.study.pk}/", {"note": "", "side": "right"}
        ).status_code
        == 302
    )
    second = PatientExplanation.objects.order_by("-id").first()
    assert second.jic_type == "C2" and second.stage_source == "clinician"
    doctor.post(f"/explanations/{second.pk}/links/", {"days": "5"})
    page = doctor.get(f"/explanations/studies/{world.study.pk}/").content.decode()
    token = re.search(r'id="new-link">[^<]*<a href="[^"]*/p/#([^"]+)"', page).group(1)
    text = Client().post("/p/", {"token": token}).content.decode()
    assert "reaches beyond the edge of the hip socket" in text
    assert "Steinberg IVB, ARCO IIIA" in text
