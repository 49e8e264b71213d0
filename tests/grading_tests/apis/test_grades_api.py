"""``POST /api/studies/{id}/grades/`` and ``GET /api/studies/{id}/audit/``."""

from __future__ import annotations

import pytest

from grading.models import AuditEvent, GradeRevision, HipResult
from tests.grading_tests.apis.conftest import assert_no_patient_identifiers, grade_body

pytestmark = pytest.mark.django_db


def test_grade_change_201_and_current_grade_follows(world):
    client = world.client("radiologist")
    url = f"/api/studies/{world.study.pk}/grades/"
    answer = client.post(url, grade_body(world), format="json", REMOTE_ADDR="10.9.8.7")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["grade"] == "severe"
    assert body["reason"] == "collapse on the coronal images"
    assert body["author"] == "radiologist"
    assert body["side"] == "right"
    assert body["series_instance_uid"] == world.phantom.series_instance_uid
    assert body["time"]
    revision = GradeRevision.objects.get(pk=body["id"])
    assert revision.author == world.users["radiologist"]

    detail = client.get(f"/api/studies/{world.study.pk}/").json()
    right = next(h for h in detail["hips"] if h["side"] == "right")
    assert right["ai_grade"] == "moderate"  # the AI grade stays as it was
    assert right["grade"] == "severe"
    assert right["revisions"] == [
        {
            "grade": "severe",
            "reason": "collapse on the coronal images",
            "author": "radiologist",
            "time": body["time"],
        }
    ]
    assert detail["grade"] == "severe"  # worst over the hips
    assert detail["ai_grade"] == "moderate"

    event = AuditEvent.objects.get(study=world.study, action="grade.change")
    assert event.reason == "collapse on the coronal images"
    assert event.client_address == "10.9.8.7"
    assert event.before == {"grade": "moderate"}


def test_two_revisions_latest_wins(world):
    client = world.client("clinician")
    url = f"/api/studies/{world.study.pk}/grades/"
    client.post(url, grade_body(world, grade="severe"), format="json")
    client.post(url, grade_body(world, grade="mild", reason="on second thought"), format="json")
    detail = client.get(f"/api/studies/{world.study.pk}/").json()
    right = next(h for h in detail["hips"] if h["side"] == "right")
    assert right["grade"] == "mild"
    assert [r["grade"] for r in right["revisions"]] == ["severe", "mild"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": None}, "reason"),
        ({"grade": "awful"}, "grade"),
        ({"grade": ""}, "grade"),
        ({"side": "middle"}, "side"),
        ({"series_instance_uid": "1.2.3.4"}, "series_instance_uid"),
    ],
)
def test_bad_grade_request_400(world, overrides, field):
    body = {k: v for k, v in grade_body(world, **overrides).items() if v is not None}
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/grades/", body, format="json"
    )
    assert answer.status_code == 400
    assert field in answer.json()
    assert not GradeRevision.objects.exists()


def test_missing_reason_400(world):
    body = grade_body(world)
    del body["reason"]
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/grades/", body, format="json"
    )
    assert answer.status_code == 400
    assert "reason" in answer.json()


def test_side_without_a_result_400(world):
    HipResult.objects.filter(side="left").delete()
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/grades/", grade_body(world, side="left"), format="json"
    )
    assert answer.status_code == 400


def test_student_403_not_404(world):
    answer = world.client("student").post(
        f"/api/studies/{world.study.pk}/grades/", grade_body(world), format="json"
    )
    assert answer.status_code == 403
    assert not GradeRevision.objects.exists()


def test_foreign_user_404(world):
    answer = world.client("foreign").post(
        f"/api/studies/{world.study.pk}/grades/", grade_body(world), format="json"
    )
    assert answer.status_code == 404
    assert not GradeRevision.objects.exists()


def test_shared_with_a_foreign_clinician_is_visible_but_not_gradable(world):
    from grading.models import StudyShare

    StudyShare.objects.create(study=world.study, user=world.users["foreign"])
    answer = world.client("foreign").post(
        f"/api/studies/{world.study.pk}/grades/", grade_body(world), format="json"
    )
    assert answer.status_code == 403


# --- audit --------------------------------------------------------------------------------


def test_audit_oldest_first_with_every_field(world):
    client = world.client("clinician")
    client.get(f"/api/studies/{world.study.pk}/", REMOTE_ADDR="10.0.0.1")
    client.post(f"/api/studies/{world.study.pk}/grades/", grade_body(world), format="json")
    answer = client.get(f"/api/studies/{world.study.pk}/audit/")
    assert answer.status_code == 200
    events = answer.json()
    assert [e["action"] for e in events] == ["study.upload", "study.view", "grade.change"]
    times = [e["time"] for e in events]
    assert times == sorted(times)
    for event in events:
        assert set(event) == {
            "id",
            "time",
            "actor",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "reason",
            "client_address",
        }
    view = events[1]
    assert view["actor"] == "clinician"
    assert view["object_type"] == "study"
    assert view["object_id"] == str(world.study.pk)
    assert view["client_address"] is None  # for admins only (test_audit_addresses.py)
    change = events[2]
    assert change["reason"] == "collapse on the coronal images"
    assert change["after"]["grade"] == "severe"


def test_audit_of_system_events_has_null_actor(world):
    from grading.services.audit import audit_record

    audit_record(actor=None, action="analysis.done", object_type="analysis", study=world.study)
    events = world.client("clinician").get(f"/api/studies/{world.study.pk}/audit/").json()
    assert events[-1]["actor"] is None


def test_audit_404_for_foreign_and_missing(world):
    assert world.client("foreign").get(f"/api/studies/{world.study.pk}/audit/").status_code == 404
    assert world.client("clinician").get("/api/studies/999999/audit/").status_code == 404


def test_audit_for_student_has_no_patient_keys(world):
    from grading.services.audit import audit_record

    audit_record(
        actor=world.users["clinician"],
        action="study.export",
        object_type="study",
        study=world.study,
        after={"patient_id": "MRN-4711-XYZ", "hips": 2, "nested": [{"patient_name": "DOE JANE"}]},
    )
    answer = world.client("student").get(f"/api/studies/{world.study.pk}/audit/")
    assert answer.status_code == 200
    assert_no_patient_identifiers(answer.content)
    export = answer.json()[-1]
    assert export["after"] == {"patient_id": None, "hips": 2, "nested": [{"patient_name": None}]}
    # A clinician sees the event as stored.
    full = world.client("clinician").get(f"/api/studies/{world.study.pk}/audit/").json()
    assert full[-1]["after"]["patient_id"] == "MRN-4711-XYZ"


def test_a_late_slice_that_makes_the_series_ungradable_keeps_the_clinicians_grade(world):
    """Found by probing the running portal: one resent slice (a new SOPInstanceUID at the
    position of another image) made the series not graded, and the clinician's grade
    vanished from the study, its hips and the worklist (the study grade became null)."""
    import io

    import pydicom
    from django.core.files.uploadedfile import SimpleUploadedFile

    from grading.services.analyses import study_analyses_request

    client = world.client("clinician")
    url = f"/api/studies/{world.study.pk}/grades/"
    assert client.post(url, grade_body(world), format="json").status_code == 201
    late = pydicom.dcmread(world.phantom.paths[0])
    late.SOPInstanceUID = pydicom.uid.generate_uid()
    late.file_meta.MediaStorageSOPInstanceUID = late.SOPInstanceUID
    buffer = io.BytesIO()
    late.save_as(buffer)
    upload = client.post(
        "/api/uploads/",
        {"files": [SimpleUploadedFile("late.dcm", buffer.getvalue())]},
        format="multipart",
    )
    assert upload.status_code == 201, upload.json()
    study_analyses_request(study_id=world.study.pk)  # what the ingest task does next
    world.series.refresh_from_db()
    assert world.series.graded is False
    assert "position of another image" in world.series.not_graded_reason

    detail = client.get(f"/api/studies/{world.study.pk}/").json()
    # The hip a person graded stays, with the person's grade; the other hip's AI result
    # is not shown, as for any series that is not graded.
    assert [(h["side"], h["grade"]) for h in detail["hips"]] == [("right", "severe")]
    assert detail["grade"] == "severe"
    assert detail["ai_grade"] is None
    row = client.get("/api/studies/").json()["results"][0]
    assert (row["id"], row["grade"]) == (world.study.pk, "severe")
    assert GradeRevision.objects.get().grade == "severe"
