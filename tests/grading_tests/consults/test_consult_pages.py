"""The second-opinion pages: the study page's link, the request form, the consultant's
list and answer form, the requester's side-by-side view."""

from __future__ import annotations

import pytest
from django.test import Client

from grading.consults.models import SecondOpinionRequest
from tests.grading_tests.apis.conftest import World

pytestmark = pytest.mark.django_db


def login(world: World, who: str) -> Client:
    client = Client()
    client.force_login(world.users[who])
    return client


def test_study_page_links_for_graders_only(world: World):
    page = login(world, "clinician").get(f"/studies/{world.study.pk}/").content.decode()
    assert f"/consults/studies/{world.study.pk}/new/" in page
    assert f"/explanations/studies/{world.study.pk}/" in page
    page = login(world, "student").get(f"/studies/{world.study.pk}/").content.decode()
    assert "/consults/studies/" not in page and "/explanations/studies/" not in page


def test_ask_answer_and_close_through_the_pages(world: World):
    clinician, foreign = login(world, "clinician"), login(world, "foreign")
    assert clinician.get(f"/consults/studies/{world.study.pk}/new/").status_code == 200
    assert (
        login(world, "student").get(f"/consults/studies/{world.study.pk}/new/").status_code == 403
    )
    answer = clinician.post(
        f"/consults/studies/{world.study.pk}/new/",
        {"consultant": "foreign", "question": "Is the right hip severe?", "days": "3"},
    )
    assert answer.status_code == 302
    consult = SecondOpinionRequest.objects.get()
    listing = foreign.get("/consults/").content.decode()
    assert f"/consults/{consult.pk}/" in listing and "Is the right hip severe?" in listing
    detail = foreign.get(f"/consults/{consult.pk}/").content.decode()
    assert 'id="answer-form"' in detail and 'id="open-study"' in detail
    hip = world.study.series.get().analyses.get().hips.order_by("side").first()
    field = f"grade-{world.series.series_instance_uid}-{hip.side}"
    assert (
        foreign.post(
            f"/consults/{consult.pk}/answer/", {field: "severe", "comment": "Agree."}
        ).status_code
        == 302
    )
    mine = clinician.get(f"/consults/{consult.pk}/").content.decode()
    assert "Agree." in mine and 'id="grades-side-by-side"' in mine and 'id="close-request"' in mine
    assert clinician.post(f"/consults/{consult.pk}/close/").status_code == 302
    assert foreign.get(f"/consults/{consult.pk}/").status_code == 404
    assert foreign.get(f"/studies/{world.study.pk}/").status_code == 404
