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
