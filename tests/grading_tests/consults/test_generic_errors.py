"""No username or site code can be told apart by the errors of the consult and enrolment
forms (issue 13 item 20): an unknown name and a name that exists but cannot be used get
the same answer."""

from __future__ import annotations

import pytest

from grading.teaching import services as teaching
from tests.grading_tests.factories import SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def _ask(world, **who):
    return world.client("clinician").post(
        "/api/consults/",
        {"study_id": world.study.pk, "question": "Moderate or severe?", **who},
        format="json",
    )


def test_unknown_and_inactive_consultants_get_the_same_error(world) -> None:
    UserFactory(username="retired", is_active=False)
    unknown = _ask(world, consultant="no-such-user")
    inactive = _ask(world, consultant="retired")
    assert unknown.status_code == inactive.status_code == 400
    assert unknown.json() == inactive.json()
    assert "no-such-user" not in unknown.content.decode()


def test_unknown_site_code_error_names_nothing(world) -> None:
    answer = _ask(world, consultant_site="no-such-site")
    assert answer.status_code == 400
    assert "no-such-site" not in answer.content.decode()


def test_a_student_only_user_is_refused_like_an_unknown_one(world) -> None:
    """A student cannot give a second opinion; whether the name exists stays unknown."""
    assert _ask(world, consultant="student").json() == _ask(world, consultant="ghost").json()


def test_the_consult_page_gives_the_same_message_for_unknown_and_inactive(world, client) -> None:
    UserFactory(username="retired", is_active=False)
    client.force_login(world.users["clinician"])
    url = f"/consults/studies/{world.study.pk}/new/"
    pages = [
        client.post(url, {"consultant": name, "question": "?"}, follow=True).content.decode()
        for name in ("no-such-user", "retired")
    ]
    from grading.consults.services import CONSULTANT_REFUSED

    for page, name in zip(pages, ("no-such-user", "retired"), strict=True):
        assert CONSULTANT_REFUSED in page
        assert name not in page


def test_enrolment_errors_do_not_tell_unknown_users_from_other_sites_users(world) -> None:
    teacher = world.users["teacher"]
    collection = teaching.collection_create(user=teacher, site=world.site, title="Course")
    elsewhere = SiteFactory(name="Elsewhere")
    from tests.grading_tests.factories import MembershipFactory

    MembershipFactory(user=UserFactory(username="outsider"), site=elsewhere, role="student")
    client = world.client("teacher")
    url = f"/api/teaching/collections/{collection.pk}/students/"
    unknown = client.post(url, {"usernames": ["ghost"]}, format="json")
    outsider = client.post(url, {"usernames": ["outsider"]}, format="json")
    assert unknown.status_code == outsider.status_code == 400
    assert unknown.json() == {"usernames": ["Not students of North General: ghost"]}
    assert outsider.json() == {"usernames": ["Not students of North General: outsider"]}
