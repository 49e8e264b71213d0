"""The teaching pages (server-rendered; the viewer's script runs in test_browser.py)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.test import Client

from grading.teaching.models import Attempt, Case
from tests.grading_tests.teaching.conftest import SOURCE_STRINGS, reference_necrosis, rgba_png

pytestmark = pytest.mark.django_db


def login(classroom, who) -> Client:
    client = Client()
    client.force_login(classroom.users[who])
    return client


def assert_clean(classroom, html: str) -> None:
    # CSRF tokens are random letters: they could spell a needle by chance.
    html = re.sub(r'(csrfmiddlewaretoken" value|csrf-token" content)="[^"]*"', "", html)
    text = html.upper()
    for needle in (*SOURCE_STRINGS, *classroom.source_uids()):
        assert needle.upper() not in text, needle
    assert f"/studies/{classroom.study.pk}/" not in html


def test_student_pages_show_no_identifiers_and_no_answer(classroom):
    client = login(classroom, "alice")
    listing = client.get("/teaching/")
    assert listing.status_code == 200 and "Hip MRI basics" in listing.content.decode()
    page = client.get(f"/teaching/collections/{classroom.collection.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Case 1" in html and "add-case" not in html
    assert_clean(classroom, html)
    case = client.get(f"/teaching/cases/{classroom.case.pk}/")
    html = case.content.decode()
    assert case.status_code == 200
    assert 'id="answer-form"' in html and 'data-tool="brush"' in html
    assert "reference.png" not in html and "Reference" not in html
    config = viewer_config(html)
    assert config["mode"] == "answer"
    assert [i["reference_url"] for i in config["images"]] == [None] * 3
    assert all(i["dicom_url"].startswith("/api/teaching/images/") for i in config["images"])
    assert_clean(classroom, html)
    # Still none on a retake: answering, a student sees only their own marking.
    from grading.teaching.services import attempt_submit

    ref = {h["side"]: h["grade"] for h in classroom.case.reference_hips}
    attempt_submit(user=classroom.users["alice"], case=classroom.case, grades=ref)
    html = client.get(f"/teaching/cases/{classroom.case.pk}/").content.decode()
    assert "reference.png" not in html
    assert viewer_config(html)["images"][0]["reference_url"] is None


def viewer_config(html: str) -> dict:
    found = re.search(r'<script id="teaching-config" type="application/json">(.*?)</script>', html)
    assert found, "the page has no viewer config"
    return json.loads(found.group(1))


def test_the_teachers_case_page_shows_the_reference_and_no_brush(classroom):
    html = login(classroom, "teacher").get(f"/teaching/cases/{classroom.case.pk}/").content.decode()
    config = viewer_config(html)
    assert config["mode"] == "view"
    assert any(i["reference_url"] for i in config["images"])
    assert 'data-tool="brush"' not in html and 'id="answer-form"' not in html


def test_answer_form_creates_an_attempt_and_shows_the_result(classroom):
    client = login(classroom, "alice")
    grades = {f"grade_{h['side']}": h["grade"] for h in classroom.case.reference_hips}
    masks = [
        {"image_id": pk, "png_base64": base64.b64encode(rgba_png(mask)).decode()}
        for pk, mask in reference_necrosis(classroom.case).items()
        if mask.any()
    ]
    answer = client.post(
        f"/teaching/cases/{classroom.case.pk}/", {**grades, "masks_json": json.dumps(masks)}
    )
    attempt = Attempt.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/teaching/attempts/{attempt.pk}/"
    assert attempt.score == 1.0 and attempt.dice == pytest.approx(1.0)
    result = client.get(answer["Location"])
    html = result.content.decode()
    assert result.status_code == 200
    assert "reference.png" in html and "mask.png" in html
    assert 'id="score">1.00<' in html
    config = viewer_config(html)
    assert config["mode"] == "result"
    assert 'name="overlay-view" value="reference"' in html
    assert 'name="overlay-view" value="marking"' in html
    assert_clean(classroom, html)
    # A retake through the form is a second attempt.
    client.post(f"/teaching/cases/{classroom.case.pk}/", grades)
    assert list(Attempt.objects.values_list("number", flat=True)) == [1, 2]
    # Bob cannot open Alice's result.
    assert login(classroom, "bob").get(f"/teaching/attempts/{attempt.pk}/").status_code == 404


def test_an_incomplete_answer_is_refused_on_the_page(classroom):
    client = login(classroom, "alice")
    answer = client.post(f"/teaching/cases/{classroom.case.pk}/", {"grade_right": "mild"})
    assert answer.status_code == 200
    assert "Give a grade for each hip" in answer.content.decode()
    assert not Attempt.objects.exists()


@pytest.mark.parametrize(
    "masks_json",
    [
        "[" * 100_000 + "]" * 100_000,  # past the recursion limit: a 500 before the fix
        '{"image_id": 1}',  # not a list: was taken as "no marking"
        "[1, 2]",
        "{",
    ],
)
def test_a_malformed_marking_is_refused_on_the_page(classroom, masks_json):
    client = login(classroom, "alice")
    grades = {f"grade_{h['side']}": h["grade"] for h in classroom.case.reference_hips}
    answer = client.post(
        f"/teaching/cases/{classroom.case.pk}/", {**grades, "masks_json": masks_json}
    )
    assert answer.status_code == 200
    assert "The marked necrosis could not be read." in answer.content.decode()
    assert not Attempt.objects.exists()


def test_teacher_editor_adds_cases_and_enrols(classroom):
    client = login(classroom, "teacher")
    made = client.post("/teaching/", {"site": classroom.site.pk, "title": "Spring course"})
    assert made.status_code == 302
    cid = int(made["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/teaching/collections/{cid}/")
    html = page.content.decode()
    assert 'id="add-case"' in html and 'id="enrol"' in html
    assert "DOE JANE" in html  # the teacher picks studies by patient
    client.post(
        f"/teaching/collections/{cid}/", {"action": "add_case", "study": classroom.study.pk}
    )
    assert Case.objects.filter(collection_id=cid).count() == 1
    client.post(
        f"/teaching/collections/{cid}/",
        {"action": "enrol", "students": [classroom.users["carol"].pk]},
    )
    assert "carol" in client.get(f"/teaching/collections/{cid}/").content.decode()


def test_teacher_results_page(classroom):
    ref = {h["side"]: h["grade"] for h in classroom.case.reference_hips}
    from grading.teaching.services import attempt_submit

    attempt_submit(user=classroom.users["alice"], case=classroom.case, grades=ref)
    page = login(classroom, "teacher").get(
        f"/teaching/collections/{classroom.collection.pk}/results/"
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="confusion"' in html and "alice" in html and "Case 1 #1: 1.00" in html
    assert (
        login(classroom, "alice")
        .get(f"/teaching/collections/{classroom.collection.pk}/results/")
        .status_code
        == 403
    )


@pytest.mark.parametrize("who", ["carol", "dave", "clinician"])
def test_pages_404_outside_the_collection(classroom, who):
    client = login(classroom, who)
    for url in (
        f"/teaching/collections/{classroom.collection.pk}/",
        f"/teaching/cases/{classroom.case.pk}/",
    ):
        assert client.get(url).status_code == 404, url


def test_form_errors_name_the_field(classroom):
    client = login(classroom, "teacher")
    site = classroom.collection.site
    page = client.post("/teaching/", {"site": site.pk, "title": "  "}, follow=True)
    assert "Title: A collection needs a title." in page.content.decode()


def test_empty_lists_say_what_to_do_next(classroom):
    from grading.teaching import services

    teacher = classroom.users["teacher"]
    empty = services.collection_create(user=teacher, site=classroom.collection.site, title="New")
    html = login(classroom, "teacher").get(f"/teaching/collections/{empty.pk}/").content.decode()
    assert "No cases yet. Add one below" in html
    assert "None enrolled. Pick members of the site below" in html
    results = login(classroom, "teacher").get(f"/teaching/collections/{empty.pk}/results/")
    assert "Enrol them on the collection page" in results.content.decode()
    from tests.grading_tests.factories import MembershipFactory, UserFactory

    newcomer = UserFactory(username="newcomer")
    MembershipFactory(user=newcomer, site=classroom.collection.site, role="student")
    client = Client()
    client.force_login(newcomer)
    listing = client.get("/teaching/").content.decode()
    assert "Ask a teacher of your site to enrol you." in listing
