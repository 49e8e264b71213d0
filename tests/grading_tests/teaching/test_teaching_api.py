"""The teaching API: cases are de-identified copies, students never see the source or the
answer before submitting, retakes are kept, scores, the teacher's results, 404s."""

from __future__ import annotations

import base64
import datetime
import io
import json

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage

from grading.dicom.deidentify import DeidentificationKey, remap_uid
from grading.models import AuditEvent
from grading.teaching.models import Attempt, Case
from tests.grading_tests.teaching.conftest import (
    SOURCE_STRINGS,
    reference_necrosis,
    rgba_png,
)

pytestmark = pytest.mark.django_db


def body(answer) -> bytes:
    if getattr(answer, "streaming", False):
        return b"".join(answer.streaming_content)
    return answer.content


def assert_nothing_of_the_source(classroom, content: bytes, *, dicom: bool = False) -> None:
    """No source string in an answer. A PNG is checked for being a bare image (no text
    chunks) and a DICOM file element by element without its pixel data: compressed or
    random pixel bytes can spell anything."""
    if content.startswith(b"\x89PNG"):
        from PIL import Image

        image = Image.open(io.BytesIO(content))
        image.load()
        assert not image.info.keys() - {"dpi", "gamma"}, image.info
        return
    if dicom:
        ds = pydicom.dcmread(io.BytesIO(content))
        del ds.PixelData
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False)
        content = buffer.getvalue() + str(ds).encode()
    text = content.decode("latin-1").upper()
    for needle in (*SOURCE_STRINGS, *classroom.source_uids()):
        assert needle.upper() not in text, f"{needle!r} reached a student"


def submit(classroom, who, grades, masks=None):
    payload = {"grades": grades}
    if masks:
        payload["masks"] = [
            {"image_id": pk, "png_base64": base64.b64encode(rgba_png(mask)).decode()}
            for pk, mask in masks.items()
        ]
    return classroom.client(who).post(
        f"/api/teaching/cases/{classroom.case.pk}/attempts/", payload, format="json"
    )


def reference(classroom) -> dict[str, str]:
    return {hip["side"]: hip["grade"] for hip in classroom.case.reference_hips}


# --- the copy --------------------------------------------------------------------------


def test_case_is_a_deidentified_copy_with_the_current_reference(classroom):
    case, study, series = classroom.case, classroom.study, classroom.series
    assert case.pseudonym == "Case 1"
    hips = {h.side: h for h in series.analyses.get().hips.all()}
    assert reference(classroom) == {side: hip.grade for side, hip in hips.items()}
    assert set(reference(classroom)) == {"right", "left"}
    key = DeidentificationKey(classroom.collection.deid_seed, classroom.collection.date_offset_days)
    assert case.study_instance_uid == remap_uid(study.study_instance_uid, key=key)
    rows = list(case.instances.order_by("index"))
    sources = list(series.instances.order_by("position", "instance_number", "id"))
    assert len(rows) == len(sources) == 3
    shift = classroom.collection.date_offset_days
    for row, source in zip(rows, sources, strict=True):
        with default_storage.open(row.file.name, "rb") as handle:
            ds = pydicom.dcmread(handle)
        with default_storage.open(source.file.name, "rb") as handle:
            original = pydicom.dcmread(handle)
        assert ds.StudyInstanceUID == case.study_instance_uid
        assert ds.SeriesInstanceUID == case.series_instance_uid
        assert ds.SOPInstanceUID == row.sop_instance_uid != source.sop_instance_uid
        assert str(ds.PatientName) == "Case^1" and ds.PatientBirthDate == ""
        assert ds.PixelData == original.PixelData
        expected = datetime.date(2024, 1, 2) + datetime.timedelta(days=shift)
        assert ds.StudyDate == expected.strftime("%Y%m%d")
        assert row.reference_labelmap
    # Copied, not linked: the case's files are its own.
    assert {r.file.name for r in rows}.isdisjoint({s.file.name for s in sources})
    assert all(r.reference_labelmap.name.startswith(f"teaching/{case.pk}/") for r in rows)


def test_uids_are_consistent_within_a_collection_and_differ_across(classroom):
    from grading.teaching import services

    other = services.case_add(
        user=classroom.users["teacher"],
        collection=classroom.other_collection,
        study_id=classroom.study.pk,
    )
    assert other.study_instance_uid != classroom.case.study_instance_uid
    mine = set(classroom.case.instances.values_list("sop_instance_uid", flat=True))
    theirs = set(other.instances.values_list("sop_instance_uid", flat=True))
    assert not mine & theirs
    # The same series twice in one collection is refused (it would map to the same UIDs).
    answer = classroom.client("teacher").post(
        f"/api/teaching/collections/{classroom.collection.pk}/cases/",
        {"study_id": classroom.study.pk},
        format="json",
    )
    assert answer.status_code == 400


def test_adding_a_case_is_audited_on_the_source_study_without_naming_the_case(classroom):
    """The copy is on the source study's trail (issue 13 item 5), but which collection
    and case it became is only in the global event: a student of the source site reads
    that trail and must not link the case back to the study."""
    event = AuditEvent.objects.get(action="teaching.case_add")
    assert event.study_id is None and event.after["case"] == classroom.case.pseudonym
    copy = AuditEvent.objects.get(study=classroom.study, action="teaching.case_copy")
    assert copy.actor == classroom.users["teacher"]
    assert copy.after["series_instance_uid"] == classroom.series.series_instance_uid
    text = str(copy.before) + str(copy.after) + copy.reason
    assert classroom.case.pseudonym not in text and "collection" not in text


# --- what a student sees ------------------------------------------------------------------


def student_urls(classroom, attempt_id=None):
    case = classroom.case
    urls = [
        "/api/teaching/collections/",
        f"/api/teaching/collections/{classroom.collection.pk}/",
        f"/api/teaching/cases/{case.pk}/",
        f"/api/teaching/cases/{case.pk}/attempts/",
    ]
    for row in case.instances.all():
        urls += [
            f"/api/teaching/images/{row.pk}/dicom/",
            f"/api/teaching/images/{row.pk}/image.png",
            f"/api/teaching/images/{row.pk}/reference.png",
        ]
        if attempt_id:
            urls.append(f"/api/teaching/attempts/{attempt_id}/images/{row.pk}/mask.png")
    return urls


def test_a_student_never_sees_identifiers_and_no_answer_before_submitting(classroom):
    client = classroom.client("alice")
    for url in student_urls(classroom):
        answer = client.get(url)
        if url.endswith("reference.png"):
            assert answer.status_code == 404, url  # hidden until an attempt
            continue
        assert answer.status_code == 200, url
        assert_nothing_of_the_source(classroom, body(answer), dicom=url.endswith("/dicom/"))
    detail = client.get(f"/api/teaching/cases/{classroom.case.pk}/").json()
    assert detail["revealed"] is False
    assert detail["reference"] is None
    assert detail["source"] is None
    assert all(image["reference_url"] is None for image in detail["images"])
    text = json.dumps(detail)
    for grade_key in ("ai_grade", "reference_grade", "proportion"):
        assert grade_key not in text
    collection = client.get(f"/api/teaching/collections/{classroom.collection.pk}/").json()
    assert collection["students"] is None
    assert all(case["source"] is None for case in collection["cases"])


def test_after_submitting_the_student_sees_the_reference_and_still_no_identifiers(classroom):
    necrosis = reference_necrosis(classroom.case)
    answer = submit(classroom, "alice", reference(classroom), masks=necrosis)
    assert answer.status_code == 201, answer.content
    attempt = answer.json()
    client = classroom.client("alice")
    for url in student_urls(classroom, attempt_id=attempt["id"]):
        got = client.get(url)
        if url.endswith("mask.png") and not necrosis[int(url.split("/")[6])].any():
            assert got.status_code == 404
            continue
        assert got.status_code == 200, url
        assert_nothing_of_the_source(classroom, body(got), dicom=url.endswith("/dicom/"))
    detail = client.get(f"/api/teaching/cases/{classroom.case.pk}/").json()
    assert detail["revealed"] is True
    assert {h["side"]: h["grade"] for h in detail["reference"]} == reference(classroom)
    assert all(image["reference_url"] for image in detail["images"])
    assert detail["source"] is None
    # Bob has not submitted: still hidden for him.
    bob = classroom.client("bob").get(f"/api/teaching/cases/{classroom.case.pk}/").json()
    assert bob["reference"] is None
    row = classroom.case.instances.first()
    assert (
        classroom.client("bob").get(f"/api/teaching/images/{row.pk}/reference.png").status_code
        == 404
    )
    # Alice's mask is hers and the teacher's, not Bob's.
    marked = attempt["marked_images"][0]
    mask_url = f"/api/teaching/attempts/{attempt['id']}/images/{marked}/mask.png"
    assert classroom.client("bob").get(mask_url).status_code == 404
    assert classroom.client("teacher").get(mask_url).status_code == 200


# --- scores and attempts ----------------------------------------------------------------


def test_exact_grades_and_the_reference_mask_score_full(classroom):
    necrosis = reference_necrosis(classroom.case)
    attempt = submit(classroom, "alice", reference(classroom), masks=necrosis).json()
    assert attempt["number"] == 1
    assert attempt["score"] == 1.0
    assert attempt["dice"] == pytest.approx(1.0)
    ref = {h["side"]: h for h in classroom.case.reference_hips}
    for hip in attempt["hips"]:
        assert hip["score"] == 1.0
        # The engine measures the student's marking inside the reference head.
        assert hip["mask_grade"] == ref[hip["side"]]["grade"]
        assert hip["mask_proportion"] == pytest.approx(ref[hip["side"]]["proportion"], abs=1e-6)


def grade_shifted(grade: str, by: int) -> str:
    from grading.teaching.scoring import GRADES

    return GRADES[min(max(GRADES.index(grade) + by, 0), 3)]


def test_partial_scores_and_dice_of_half_a_mask(classroom):
    ref = reference(classroom)
    sides = sorted(ref)
    off_by_one = {
        sides[0]: ref[sides[0]],
        sides[1]: grade_shifted(ref[sides[1]], 1 if ref[sides[1]] != "severe" else -1),
    }
    necrosis = reference_necrosis(classroom.case)
    half = {}
    for pk, mask in necrosis.items():
        half[pk] = mask.copy()
        rows = np.nonzero(mask.any(axis=1))[0]
        if rows.size:
            half[pk][: rows[0] + (rows[-1] - rows[0]) // 2] = False
    attempt = submit(classroom, "alice", off_by_one, masks=half).json()
    assert attempt["score"] == pytest.approx(0.75)
    marked = sum(int(m.sum()) for m in half.values())
    total = sum(int(m.sum()) for m in necrosis.values())
    assert attempt["dice"] == pytest.approx(2 * marked / (marked + total), abs=1e-6)
    without_mask = submit(classroom, "alice", off_by_one).json()
    assert without_mask["dice"] is None
    assert all(h["mask_grade"] is None for h in without_mask["hips"])


def test_retakes_are_new_attempts_and_never_overwrite(classroom):
    ref = reference(classroom)
    wrong = {
        side: grade_shifted(grade, 2 if grade in ("none", "mild") else -2)
        for side, grade in ref.items()
    }
    first = submit(classroom, "alice", wrong).json()
    second = submit(classroom, "alice", ref).json()
    assert (first["number"], second["number"]) == (1, 2)
    assert first["score"] == 0.0 and second["score"] == 1.0
    listed = (
        classroom.client("alice").get(f"/api/teaching/cases/{classroom.case.pk}/attempts/").json()
    )
    assert [a["number"] for a in listed] == [1, 2]
    assert listed[0]["grades"] == wrong and listed[0]["score"] == 0.0
    assert (
        Attempt.objects.filter(case=classroom.case, student=classroom.users["alice"]).count() == 2
    )


def test_bad_answers_are_400(classroom):
    ref = reference(classroom)
    one_side = dict(list(ref.items())[:1])
    assert submit(classroom, "alice", one_side).status_code == 400
    assert submit(classroom, "alice", {**ref, "right": "terrible"}).status_code == 400
    row = classroom.case.instances.first()
    wrong_shape = {row.pk: np.ones((8, 8), bool)}
    assert submit(classroom, "alice", ref, masks=wrong_shape).status_code == 400
    assert not Attempt.objects.exists()


# --- the teacher ------------------------------------------------------------------------


def test_teacher_results_per_case_and_per_student(classroom):
    ref = reference(classroom)
    sides = list(ref)
    wrong = {
        side: grade_shifted(grade, 1 if grade != "severe" else -1) for side, grade in ref.items()
    }
    submit(classroom, "alice", wrong)
    submit(classroom, "alice", ref, masks=reference_necrosis(classroom.case))
    submit(classroom, "bob", ref)
    answer = classroom.client("teacher").get(
        f"/api/teaching/collections/{classroom.collection.pk}/results/"
    )
    assert answer.status_code == 200
    results = answer.json()
    (case,) = results["cases"]
    assert case["pseudonym"] == "Case 1"
    assert case["students_done"] == 2 and case["attempts"] == 3
    assert case["mean_first_score"] == pytest.approx((0.5 + 1.0) / 2)
    assert case["mean_latest_score"] == pytest.approx(1.0)
    assert case["mean_first_dice"] is None  # Alice marked only on her retake
    for hip in case["hips"]:
        assert hip["reference_grade"] == ref[hip["side"]]
        assert sum(hip["distribution"].values()) == 2
        assert hip["distribution"][ref[hip["side"]]] == 1
        assert hip["distribution"][wrong[hip["side"]]] == 1
        assert hip["agreement"] == 0.5
    grades = results["grades"]
    confusion = results["confusion"]
    assert sum(map(sum, confusion)) == 2 * len(sides)
    for side in sides:
        assert confusion[grades.index(ref[side])][grades.index(wrong[side])] >= 1
    students = {s["username"]: s for s in results["students"]}
    assert set(students) == {"alice", "bob"}
    assert [a["number"] for a in students["alice"]["attempts"]] == [1, 2]
    assert students["alice"]["attempts"][1]["dice"] == pytest.approx(1.0)
    assert students["alice"]["mean_first_score"] == 0.5
    assert students["bob"]["cases_done"] == 1
    # The teacher's view of the case names the source; students' never does.
    detail = classroom.client("teacher").get(f"/api/teaching/cases/{classroom.case.pk}/").json()
    assert detail["source"]["study_id"] == classroom.study.pk
    assert detail["revealed"] is True


def test_teacher_creates_enrols_and_adds_through_the_api(classroom):
    client = classroom.client("teacher")
    made = client.post(
        "/api/teaching/collections/", {"site": classroom.site.pk, "title": "New"}, format="json"
    )
    assert made.status_code == 201
    cid = made.json()["id"]
    enrol = client.post(
        f"/api/teaching/collections/{cid}/students/", {"usernames": ["alice"]}, format="json"
    )
    assert enrol.status_code == 201 and enrol.json()["students"] == ["alice"]
    # Only members of the collection's site.
    assert (
        client.post(
            f"/api/teaching/collections/{cid}/students/", {"usernames": ["dave"]}, format="json"
        ).status_code
        == 400
    )
    added = client.post(
        f"/api/teaching/collections/{cid}/cases/", {"study_id": classroom.study.pk}, format="json"
    )
    assert added.status_code == 201, added.content
    assert added.json()["pseudonym"] == "Case 1"
    # A student may not start a collection; a teacher not at the site may not either.
    assert (
        classroom.client("alice")
        .post(
            "/api/teaching/collections/", {"site": classroom.site.pk, "title": "x"}, format="json"
        )
        .status_code
        == 403
    )
    assert (
        classroom.client("south_teacher")
        .post(
            "/api/teaching/collections/", {"site": classroom.site.pk, "title": "x"}, format="json"
        )
        .status_code
        == 403
    )


def test_a_teacher_cannot_add_a_study_they_cannot_see(classroom):
    answer = classroom.client("south_teacher").post(
        f"/api/teaching/collections/{classroom.foreign_collection.pk}/cases/",
        {"study_id": classroom.study.pk},
        format="json",
    )
    assert answer.status_code == 404
    assert not Case.objects.filter(collection=classroom.foreign_collection).exists()


# --- who gets 404 / 403 / 401 ----------------------------------------------------------------


@pytest.mark.parametrize("who", ["carol", "dave", "clinician", "south_teacher"])
def test_anyone_outside_the_collection_gets_404(classroom, who):
    client = classroom.client(who)
    attempt = submit(classroom, "alice", reference(classroom)).json()
    row = classroom.case.instances.first()
    cid, case_id = classroom.collection.pk, classroom.case.pk
    for url in [
        f"/api/teaching/collections/{cid}/",
        f"/api/teaching/collections/{cid}/results/",
        f"/api/teaching/cases/{case_id}/",
        f"/api/teaching/cases/{case_id}/attempts/",
        f"/api/teaching/images/{row.pk}/dicom/",
        f"/api/teaching/images/{row.pk}/image.png",
        f"/api/teaching/images/{row.pk}/reference.png",
        f"/api/teaching/attempts/{attempt['id']}/images/{row.pk}/mask.png",
    ]:
        assert client.get(url).status_code == 404, url
    assert submit(classroom, who, reference(classroom)).status_code == 404
    for url, data in [
        (f"/api/teaching/collections/{cid}/students/", {"usernames": [who]}),
        (f"/api/teaching/collections/{cid}/cases/", {"study_id": classroom.study.pk}),
    ]:
        assert client.post(url, data, format="json").status_code == 404, url
    listed = client.get("/api/teaching/collections/").json()
    assert cid not in {c["id"] for c in listed}


def test_a_student_of_the_collection_gets_403_on_the_teachers_operations(classroom):
    client = classroom.client("alice")
    cid = classroom.collection.pk
    assert client.get(f"/api/teaching/collections/{cid}/results/").status_code == 403
    assert (
        client.post(
            f"/api/teaching/collections/{cid}/cases/",
            {"study_id": classroom.study.pk},
            format="json",
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/teaching/collections/{cid}/students/", {"usernames": ["carol"]}, format="json"
        ).status_code
        == 403
    )


def test_the_teacher_does_not_submit_attempts(classroom):
    assert submit(classroom, "teacher", reference(classroom)).status_code == 403


def test_anonymous_gets_401(classroom):
    assert classroom.client(None).get("/api/teaching/collections/").status_code == 401
    assert (
        classroom.client(None).get(f"/api/teaching/cases/{classroom.case.pk}/").status_code == 401
    )


# --- JIC type ----------------------------------------------------------------------------


def test_students_answer_the_jic_type_when_the_reference_has_one(classroom):
    from grading.models import HipResult
    from grading.services.classifications import hip_classification_revise
    from grading.teaching import services

    hip = HipResult.objects.get(analysis__series=classroom.series, side="right")
    hip_classification_revise(
        user=classroom.users["clinician"],
        hip_result=hip,
        changes={"jic_type": "C1"},
        reason="coronal T1 at the workstation",
        client_address=None,
    )
    case = services.case_add(
        user=classroom.users["teacher"],
        collection=classroom.other_collection,
        study_id=classroom.study.pk,
    )
    assert {h["side"]: h["jic_type"] for h in case.reference_hips} == {"right": "C1", "left": None}
    url = f"/api/teaching/cases/{case.pk}/attempts/"
    grades = {h["side"]: h["grade"] for h in case.reference_hips}
    carol = classroom.client("carol")
    # The JIC type of the right hip is required.
    missing = carol.post(url, {"grades": grades}, format="json")
    assert missing.status_code == 400 and "JIC" in missing.content.decode()
    exact = carol.post(url, {"grades": grades, "jic_types": {"right": "C1"}}, format="json")
    assert exact.status_code == 201, exact.content
    assert exact.json()["jic_score"] == 1.0 and exact.json()["score"] == 1.0
    near = carol.post(url, {"grades": grades, "jic_types": {"right": "C2"}}, format="json").json()
    assert near["jic_score"] == 0.5
    far = carol.post(url, {"grades": grades, "jic_types": {"right": "A"}}, format="json").json()
    assert far["jic_score"] == 0.0 and far["score"] == 1.0  # the grade score stands apart
    right = next(h for h in far["hips"] if h["side"] == "right")
    assert (right["jic_type"], right["reference_jic_type"]) == ("A", "C1")
    # A case whose reference has no JIC type asks for none.
    plain = submit(classroom, "alice", reference(classroom)).json()
    assert plain["jic_score"] is None


def test_an_enhanced_mr_series_is_refused_as_a_case_with_a_reason(classroom):
    from django.core.exceptions import ValidationError

    from grading.models import Instance
    from grading.teaching import services

    Instance.objects.filter(series=classroom.series).update(frame_number=1)
    with pytest.raises(ValidationError, match="multi-frame"):
        services.case_add(
            user=classroom.users["teacher"],
            collection=classroom.other_collection,
            study_id=classroom.study.pk,
        )
