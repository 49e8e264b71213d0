"""Second opinions through the API: who sees what, answers beside the requester's grade,
access ending on close and expiry, every step on the audit trail, the live push."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from grading.consults.models import SecondOpinionRequest
from grading.models import GradeRevision, OutboxMessage
from tests.grading_tests.apis.conftest import (
    World,
)
from tests.grading_tests.factories import MembershipFactory, SiteFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def ask(world: World, **body) -> dict:
    answer = world.client("clinician").post(
        "/api/consults/",
        {"study_id": world.study.pk, "question": "Moderate or severe on the right?", **body},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


def actions(world: World) -> list[str]:
    rows = world.client("clinician").get(f"/api/studies/{world.study.pk}/audit/").json()
    return [row["action"] for row in rows]


def hips_of(world: World) -> list[dict]:
    return world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()["hips"]


def test_consultant_sees_only_the_requested_study(world: World):
    # "foreign" is a clinician of the other site, which has a study of its own.
    other_study = StudyFactory(site=world.site)
    own_study = StudyFactory(site=world.other_site)
    foreign = world.client("foreign")
    assert foreign.get(f"/api/studies/{world.study.pk}/").status_code == 404

    consult = ask(world, consultant="foreign")

    assert foreign.get(f"/api/studies/{world.study.pk}/").status_code == 200
    assert foreign.get(f"/api/studies/{other_study.pk}/").status_code == 404
    ids = {row["id"] for row in foreign.get("/api/studies/").json()["results"]}
    assert ids == {world.study.pk, own_study.pk}
    # Images and label maps of the study, not of another one of the site.
    instance = world.instances[0]
    assert foreign.get(f"/api/instances/{instance.pk}/dicom/").status_code == 200
    assert foreign.get(f"/api/consults/{consult['id']}/").status_code == 200
    # Another user of the consultant's site was not asked.
    bystander = UserFactory(username="bystander")
    MembershipFactory(user=bystander, site=world.other_site, role="clinician")
    assert client_for(bystander).get(f"/api/studies/{world.study.pk}/").status_code == 404
    assert client_for(bystander).get(f"/api/consults/{consult['id']}/").status_code == 404
    # A consultant may not change the clinical grade.
    hip = hips_of(world)[0]
    answer = foreign.post(
        f"/api/studies/{world.study.pk}/grades/",
        {
            "series_instance_uid": hip["series_instance_uid"],
            "side": hip["side"],
            "grade": "severe",
            "reason": "x",
        },
        format="json",
    )
    assert answer.status_code == 403


def test_request_to_a_site_reaches_its_clinicians_not_its_students(world: World):
    site = SiteFactory(name="East", code="east")
    doctor, student = UserFactory(username="east-doc"), UserFactory(username="east-stud")
    MembershipFactory(user=doctor, site=site, role="radiologist")
    MembershipFactory(user=student, site=site, role="student")
    consult = ask(world, consultant_site="east")
    assert client_for(doctor).get(f"/api/studies/{world.study.pk}/").status_code == 200
    assert client_for(student).get(f"/api/studies/{world.study.pk}/").status_code == 404
    assert client_for(student).get(f"/api/consults/{consult['id']}/").status_code == 404


def test_answer_appears_beside_the_requester_grade_and_is_no_grade_revision(world: World):
    consult = ask(world, consultant="foreign")
    hips = hips_of(world)
    grades_before = {(h["side"], h["grade"]) for h in hips}
    body = {
        "hips": [
            {"series_instance_uid": h["series_instance_uid"], "side": h["side"], "grade": "severe"}
            for h in hips
        ],
        "comment": "The right head looks severe to me.",
    }
    answer = world.client("foreign").post(
        f"/api/consults/{consult['id']}/answers/", body, format="json"
    )
    assert answer.status_code == 201, answer.content

    detail = world.client("clinician").get(f"/api/consults/{consult['id']}/").json()
    assert detail["status"] == "answered"
    assert detail["answers"][0]["author"] == "foreign"
    assert detail["answers"][0]["comment"] == "The right head looks severe to me."
    assert {h["grade"] for h in detail["answers"][0]["hips"]} == {"severe"}
    assert {(h["side"], h["grade"]) for h in detail["requester_hips"]} == grades_before
    # The study's grades did not change and no revision was written.
    assert {(h["side"], h["grade"]) for h in hips_of(world)} == grades_before
    assert not GradeRevision.objects.exists()
    # The requester's page shows both.
    client = APIClient()
    client.force_login(world.users["clinician"])
    page = client.get(f"/consults/{consult['id']}/").content.decode()
    assert "The right head looks severe to me." in page
    assert "severe" in page


def test_only_the_consultant_answers_and_bad_answers_are_refused(world: World):
    consult = ask(world, consultant="foreign")
    hip = hips_of(world)[0]
    good = {"series_instance_uid": hip["series_instance_uid"], "side": hip["side"], "grade": "mild"}
    url = f"/api/consults/{consult['id']}/answers/"
    assert world.client("clinician").post(url, {"hips": [good]}, format="json").status_code == 403
    assert world.client("student").post(url, {"hips": [good]}, format="json").status_code == 404
    assert world.client(None).post(url, {"hips": [good]}, format="json").status_code == 401
    unknown = {**good, "series_instance_uid": "1.2.3"}
    foreign = world.client("foreign")
    assert foreign.post(url, {"hips": [unknown]}, format="json").status_code == 400
    assert foreign.post(url, {"hips": [good, good]}, format="json").status_code == 400
    assert foreign.post(url, {"hips": [], "comment": ""}, format="json").status_code == 400


def test_a_student_or_an_outsider_cannot_ask(world: World):
    body = {"study_id": world.study.pk, "question": "?", "consultant": "foreign"}
    assert world.client("student").post("/api/consults/", body, format="json").status_code == 403
    assert world.client("foreign").post("/api/consults/", body, format="json").status_code == 404
    both = {**body, "consultant_site": world.other_site.code}
    assert world.client("clinician").post("/api/consults/", both, format="json").status_code == 400
    nobody = {"study_id": world.study.pk, "question": "?"}
    assert (
        world.client("clinician").post("/api/consults/", nobody, format="json").status_code == 400
    )


def test_access_ends_when_the_request_is_closed(world: World):
    consult = ask(world, consultant="foreign")
    foreign = world.client("foreign")
    assert foreign.get(f"/api/studies/{world.study.pk}/").status_code == 200
    assert foreign.post(f"/api/consults/{consult['id']}/close/").status_code == 403
    closed = world.client("clinician").post(f"/api/consults/{consult['id']}/close/")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert foreign.get(f"/api/studies/{world.study.pk}/").status_code == 404
    assert foreign.get(f"/api/consults/{consult['id']}/").status_code == 404
    assert world.study.pk not in {r["id"] for r in foreign.get("/api/studies/").json()["results"]}
    assert (
        world.client("clinician").post(f"/api/consults/{consult['id']}/close/").status_code == 400
    )


def test_access_ends_when_the_request_expires(world: World):
    consult = ask(world, consultant="foreign", days=1)
    foreign = world.client("foreign")
    assert foreign.get(f"/api/studies/{world.study.pk}/").status_code == 200
    SecondOpinionRequest.objects.filter(pk=consult["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    # Access ends at expiry even before anything marks the request expired.
    assert foreign.get(f"/api/studies/{world.study.pk}/").status_code == 404
    assert foreign.get(f"/api/consults/{consult['id']}/").status_code == 404
    detail = world.client("clinician").get(f"/api/consults/{consult['id']}/").json()
    assert detail["status"] == "expired"
    assert actions(world).count("consult.expire") == 1
    # The expiry is recorded once, however often it is looked at.
    world.client("clinician").get("/api/consults/")
    assert actions(world).count("consult.expire") == 1


def test_every_step_is_audited(world: World):
    consult = ask(world, consultant="foreign")
    foreign = world.client("foreign")
    foreign.get(f"/api/consults/{consult['id']}/")
    hip = hips_of(world)[0]
    foreign.post(
        f"/api/consults/{consult['id']}/answers/",
        {
            "hips": [
                {
                    "series_instance_uid": hip["series_instance_uid"],
                    "side": hip["side"],
                    "grade": "mild",
                }
            ],
            "comment": "ok",
        },
        format="json",
    )
    world.client("clinician").post(f"/api/consults/{consult['id']}/close/")
    seen = actions(world)
    for action in ("consult.request", "consult.view", "consult.answer", "consult.close"):
        assert action in seen, (action, seen)
    rows = world.client("clinician").get(f"/api/studies/{world.study.pk}/audit/").json()
    by_action = {row["action"]: row for row in rows}
    assert by_action["consult.request"]["actor"] == "clinician"
    assert by_action["consult.request"]["after"]["consultant"] == "foreign"
    assert by_action["consult.view"]["actor"] == "foreign"
    assert by_action["consult.answer"]["after"]["hips"][0]["grade"] == "mild"


def test_lists_split_by_role(world: World):
    consult = ask(world, consultant="foreign")
    mine = world.client("foreign").get("/api/consults/?role=consultant").json()
    assert [row["id"] for row in mine] == [consult["id"]]
    assert mine[0]["is_consultant"] is True
    asked = world.client("clinician").get("/api/consults/?role=requester").json()
    assert [row["id"] for row in asked] == [consult["id"]]
    assert world.client("clinician").get("/api/consults/?role=consultant").json() == []


def test_new_request_is_pushed_to_the_consultant(world: World, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        consult = ask(world, consultant="foreign")
    pushed = list(OutboxMessage.objects.filter(payload__type="consult.request"))
    assert [m.group for m in pushed] == [f"user-{world.users['foreign'].pk}"]
    assert pushed[0].payload["request_id"] == consult["id"]
    assert pushed[0].payload["study_id"] == world.study.pk
    assert "patient" not in str(pushed[0].payload).lower()


def test_worklist_badge_counts_open_requests(world: World):
    client = APIClient()
    client.force_login(world.users["foreign"])
    page = client.get("/").content.decode()
    assert 'id="consult-badge"' in page and 'data-count="0"' in page
    ask(world, consultant="foreign")
    page = client.get("/").content.decode()
    assert 'data-count="1"' in page


def test_consultant_websocket_groups(world: World):
    from grading.selectors import study_group, user_groups

    foreign = world.users["foreign"]
    assert study_group(study_id=world.study.pk) not in user_groups(user=foreign)
    assert f"user-{foreign.pk}" in user_groups(user=foreign)
    ask(world, consultant="foreign")
    assert study_group(study_id=world.study.pk) in user_groups(user=foreign)
