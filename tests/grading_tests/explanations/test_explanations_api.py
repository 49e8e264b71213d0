"""Patient explanations through the API and the public pages: who may make one, the
one-page PDF with the grade text and the doctor's name and nothing about other
patients, share links (410 once expired or revoked, 404 unknown), the audit trail."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image
from pypdf import PdfReader

from grading.explanations.models import ShareLink
from tests.grading_tests.apis.conftest import (
    PATIENT_STRINGS,
    World,
)
from tests.grading_tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

NOTE = "We will repeat the MRI in six months and talk about it then."


def make(world: World, who: str = "clinician", **body) -> dict:
    answer = world.client(who).post(
        "/api/explanations/",
        {"study_id": world.study.pk, "note": NOTE, **body},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


def link(world: World, explanation_id: int, **body) -> dict:
    answer = world.client("clinician").post(
        f"/api/explanations/{explanation_id}/links/", body, format="json"
    )
    assert answer.status_code == 201, answer.content
    return answer.json()


def actions(world: World) -> list[str]:
    rows = world.client("clinician").get(f"/api/studies/{world.study.pk}/audit/").json()
    return [row["action"] for row in rows]


def assert_absent(text: str, needles: tuple[str, ...]) -> None:
    """No needle as a word of ``text`` ("DOE" of the patient's name, not of "does")."""
    for needle in needles:
        assert not re.search(rf"\b{re.escape(needle)}\b", text, re.IGNORECASE), needle


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def named_doctor(world: World) -> World:
    doctor = world.users["clinician"]
    doctor.first_name, doctor.last_name = "Ada", "Lovelace"
    doctor.save()
    return world


def test_explanation_of_the_worst_hip(world: World):
    hips = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()["hips"]
    worst = max(
        hips,
        key=lambda h: (
            {"none": 0, "mild": 1, "moderate": 2, "severe": 3}[h["grade"]],
            h["proportion"],
        ),
    )
    made = make(world)
    assert made["side"] == worst["side"]
    assert made["grade"] == worst["grade"]
    assert made["proportion"] == pytest.approx(worst["proportion"])
    assert made["note"] == NOTE
    assert made["links"] == []
    # The chosen slice is the one with the largest necrosis of that hip.
    slices = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()["slices"]
    areas = {
        s["sop_instance_uid"]: h["necrosis_area_mm2"]
        for s in slices
        for h in s["hips"]
        if h["side"] == made["side"]
    }
    chosen = next(i for i in world.instances if i.pk == made["instance_id"])
    assert areas[chosen.sop_instance_uid] == max(areas.values())
    other = make(world, side="left" if made["side"] == "right" else "right")
    assert other["side"] != made["side"]


def test_who_may_make_and_read_explanations(world: World):
    body = {"study_id": world.study.pk, "note": ""}
    assert (
        world.client("student").post("/api/explanations/", body, format="json").status_code == 403
    )
    assert (
        world.client("foreign").post("/api/explanations/", body, format="json").status_code == 404
    )
    assert world.client(None).post("/api/explanations/", body, format="json").status_code == 401
    made = make(world)
    for who, code in (("radiologist", 200), ("student", 404), ("foreign", 404)):
        assert world.client(who).get(f"/api/explanations/{made['id']}/").status_code == code
        assert world.client(who).get(f"/api/explanations/{made['id']}/pdf/").status_code == code
    too_long = {**body, "note": "x" * 1201}
    assert (
        world.client("clinician").post("/api/explanations/", too_long, format="json").status_code
        == 400
    )
    ungraded = StudyFactory(site=world.site)
    answer = world.client("clinician").post(
        "/api/explanations/", {"study_id": ungraded.pk}, format="json"
    )
    assert answer.status_code == 400


def test_pdf_is_one_page_with_the_grade_text_and_the_doctor(named_doctor: World):
    world = named_doctor
    other = StudyFactory(site=world.site, patient_name="QUIRK^ZEBULON", patient_id="MRN-9999")
    made = make(world)
    answer = world.client("clinician").get(f"/api/explanations/{made['id']}/pdf/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/pdf"
    pages, text = pdf_text(answer.content)
    assert pages == 1
    flat = " ".join(text.split())
    assert "Ada Lovelace" in flat
    assert f"{made['proportion'] * 100:.1f} %" in flat
    assert made["grade"].capitalize() in flat
    assert "What the grade does not mean" in flat
    assert "not a diagnosis" in flat
    assert "not a medical device" in flat
    assert "six months" in flat
    assert_absent(flat, (*PATIENT_STRINGS, "QUIRK", "ZEBULON", other.patient_id))
    assert world.study.study_instance_uid not in flat


def test_pdf_stays_one_page_with_the_longest_note(world: World):
    made = make(world, note=("A long note for the patient. " * 60)[:1200])
    pages, _ = pdf_text(
        world.client("clinician").get(f"/api/explanations/{made['id']}/pdf/").content
    )
    assert pages == 1


def test_public_page_and_pdf_through_a_link(named_doctor: World):
    world = named_doctor
    StudyFactory(site=world.site, patient_name="QUIRK^ZEBULON", patient_id="MRN-9999")
    made = make(world)
    created = link(world, made["id"], days=7)
    assert created["is_live"] is True
    assert created["url"].endswith(f"/p/#{created['token']}")  # never in a logged path
    # Only the token's hash is stored.
    assert not ShareLink.objects.filter(token_hash=created["token"]).exists()

    anonymous = Client()
    page = anonymous.post("/p/", {"token": created["token"]})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ada Lovelace" in html
    assert NOTE in html
    assert "not a medical device" in html
    assert "What the grade does not mean" in html
    assert "@media print" in html
    assert_absent(html, (*PATIENT_STRINGS, "QUIRK", "ZEBULON", "MRN-9999"))
    assert world.study.study_instance_uid not in html
    # The picture: a square RGB crop with orange necrosis in it.
    src = html.split('id="head-image" src="data:image/png;base64,')[1].split('"')[0]
    import base64

    image = Image.open(io.BytesIO(base64.b64decode(src)))
    assert image.mode == "RGB" and image.size[0] == image.size[1]
    pdf = anonymous.post("/p/pdf/", {"token": created["token"]})
    assert pdf.status_code == 200
    assert pdf_text(pdf.content)[0] == 1


def test_expired_link_answers_410(world: World):
    made = make(world)
    created = link(world, made["id"])
    ShareLink.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert Client().post("/p/", {"token": created["token"]}).status_code == 410
    assert Client().post("/p/pdf/", {"token": created["token"]}).status_code == 410
    detail = world.client("clinician").get(f"/api/explanations/{made['id']}/").json()
    assert detail["links"][0]["is_live"] is False


def test_revoked_link_answers_410(world: World):
    made = make(world)
    created = link(world, made["id"])
    assert Client().post("/p/", {"token": created["token"]}).status_code == 200
    for who, code in (("student", 404), ("foreign", 404)):
        answer = world.client(who).post(f"/api/explanations/links/{created['id']}/revoke/")
        assert answer.status_code == code
    revoked = world.client("clinician").post(f"/api/explanations/links/{created['id']}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]
    assert Client().post("/p/", {"token": created["token"]}).status_code == 410
    assert Client().post("/p/pdf/", {"token": created["token"]}).status_code == 410


def test_unknown_token_answers_404(world: World):
    assert Client().post("/p/", {"token": "not-a-real-token"}).status_code == 404
    assert Client().post("/p/pdf/", {"token": "not-a-real-token"}).status_code == 404


def test_every_step_is_audited(world: World):
    made = make(world)
    world.client("clinician").get(f"/api/explanations/{made['id']}/pdf/")
    created = link(world, made["id"])
    Client().post("/p/", {"token": created["token"]})
    Client().post("/p/pdf/", {"token": created["token"]})
    world.client("clinician").post(f"/api/explanations/links/{created['id']}/revoke/")
    Client().post("/p/", {"token": created["token"]})
    rows = world.client("clinician").get(f"/api/studies/{world.study.pk}/audit/").json()
    seen = [row["action"] for row in rows]
    assert seen.count("explanation.create") == 1
    assert seen.count("explanation.pdf") == 1
    assert seen.count("explanation.link_create") == 1
    assert seen.count("explanation.link_revoke") == 1
    views = [row["after"] for row in rows if row["action"] == "explanation.link_view"]
    assert [(v["what"], v["outcome"]) for v in views] == [
        ("page", "shown"),
        ("pdf", "shown"),
        ("page", "revoked"),
    ]
    # The token never lands in the audit trail.
    assert created["token"] not in str(rows)


def test_a_site_can_adapt_the_text(world: World, tmp_path, settings):
    site_dir = tmp_path / "explanations" / world.site.code
    site_dir.mkdir(parents=True)
    (site_dir / "patient_text.txt").write_text("# Our words\nThe grade is {{ grade_words }}.\n")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    made = make(world)
    _, text = pdf_text(
        world.client("clinician").get(f"/api/explanations/{made['id']}/pdf/").content
    )
    assert "Our words" in text
    assert "What the grade does not mean" not in text


def test_the_patient_page_says_the_likely_range_in_words(named_doctor: World):
    """The engine's 85 % interval of the explained hip reaches the page, the text and
    the PDF as "about 12 to 20 %"; after a mask edit it no longer describes the
    proportion, and nothing is said."""
    from grading.explanations.selectors import interval_words
    from grading.models import HipResult

    world = named_doctor
    hips = HipResult.objects.filter(analysis__series__study=world.study)
    hips.update(ai_proportion_interval=[0.12, 0.2])
    made = make(world)
    created = link(world, made["id"], days=7)
    html = Client().post("/p/", {"token": created["token"]}).content.decode()
    assert '<span id="proportion-range">(about 12 to 20 %)</span>' in html
    assert "the true share is most likely about 12 to 20 %" in html
    pages, text = pdf_text(
        world.client("clinician").get(f"/api/explanations/{made['id']}/pdf/").content
    )
    flat = " ".join(text.split())
    assert pages == 1 and "Likely range about 12 to 20 %" in flat

    for hip in hips:
        hip.flags = [*hip.flags, "edited: a person changed the label maps"]
        hip.save()
    edited = make(world)
    created = link(world, edited["id"], days=7)
    html = Client().post("/p/", {"token": created["token"]}).content.decode()
    assert "proportion-range" not in html and "most likely" not in html

    assert interval_words([0.004, 0.031]) == "about 0.4 to 3.1 %"
    assert interval_words([0.0, 0.0003]) == "less than 0.1 %"
    assert interval_words(None) == ""
