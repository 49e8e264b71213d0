"""``GET /api/studies/`` and ``GET /api/studies/{id}/``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from grading.models import AuditEvent
from tests.grading_tests.apis.conftest import assert_no_patient_identifiers
from tests.grading_tests.factories import StudyFactory

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "id",
    "study_instance_uid",
    "patient_name",
    "patient_id",
    "study_date",
    "site",
    "status",
    "ai_grade",
    "grade",
    "flags",
    "failure_reason",
    "ai_changed_since_review",
    "created",
    "stalled",
}


@pytest.fixture
def more_studies(world):
    """Four more studies of the world's site and one of the other site."""
    return {
        "queued": StudyFactory(
            site=world.site,
            status="queued",
            study_date=dt.date(2023, 5, 1),
            patient_name="ALPHA ONE",
            study_description="HIPS LEFT",
        ),
        "failed": StudyFactory(
            site=world.site,
            status="failed",
            error="no axial MR series",
            study_date=dt.date(2022, 1, 1),
            patient_name="BRAVO TWO",
        ),
        "severe": StudyFactory(
            site=world.site,
            status="done",
            grade="severe",
            ai_grade="mild",
            study_date=dt.date(2024, 6, 30),
            patient_name="CHARLIE THREE",
        ),
        "none": StudyFactory(
            site=world.site,
            status="done",
            grade="none",
            ai_grade="none",
            study_date=None,
            patient_name="DELTA FOUR",
        ),
        "foreign": StudyFactory(
            site=world.other_site, status="done", grade="severe", patient_name="ECHO FIVE"
        ),
    }


def ids(answer) -> list[int]:
    return [row["id"] for row in answer.json()["results"]]


def test_list_shape_and_visibility(world, more_studies):
    answer = world.client("clinician").get("/api/studies/")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5
    assert more_studies["foreign"].pk not in ids(answer)
    row = next(r for r in body["results"] if r["id"] == world.study.pk)
    assert set(row) == SUMMARY_KEYS
    assert row["site"] == {"id": world.site.pk, "name": world.site.name}
    assert row["patient_name"] == "DOE JANE"
    assert row["patient_id"] == "MRN-4711-XYZ"
    assert row["study_date"] == "2024-01-02"
    assert row["status"] == "done"
    assert row["ai_grade"] == row["grade"] == world.study.grade
    assert row["grade"] in {"none", "mild", "moderate", "severe"}

    foreign = world.client("foreign").get("/api/studies/")
    assert ids(foreign) == [more_studies["foreign"].pk]


def test_newest_first_by_default(world, more_studies):
    answer = world.client("clinician").get("/api/studies/")
    created = [row["created"] for row in answer.json()["results"]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=queued", ["queued"]),
        ("status=failed", ["failed"]),
        ("grade=severe", ["severe"]),
        ("grade=none", ["none"]),
        ("ai_grade=mild", ["severe"]),
        ("date_from=2024-01-01", ["world", "severe"]),
        ("date_to=2023-12-31", ["queued", "failed"]),
        ("date_from=2023-01-01&date_to=2024-01-02", ["queued", "world"]),
        ("search=bravo", ["failed"]),
        ("search=MRN-4711", ["world"]),
        ("search=hips+left", ["queued"]),
        ("status=done&grade=none", ["none"]),
    ],
)
def test_filters(world, more_studies, query, expected):
    names = {**{k: v.pk for k, v in more_studies.items()}, "world": world.study.pk}
    answer = world.client("radiologist").get(f"/api/studies/?{query}")
    assert answer.status_code == 200, answer.json()
    assert sorted(ids(answer)) == sorted(names[e] for e in expected)


def test_filter_by_site(world, more_studies):
    client = world.client("clinician")
    assert len(ids(client.get(f"/api/studies/?site={world.site.pk}"))) == 5
    # Another site's id filters to nothing; it never shows that site's studies.
    assert ids(client.get(f"/api/studies/?site={world.other_site.pk}")) == []


def test_search_by_study_uid(world, more_studies):
    uid = world.study.study_instance_uid
    answer = world.client("clinician").get(f"/api/studies/?search={uid[-12:]}")
    assert ids(answer) == [world.study.pk]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("study_date", ["failed", "queued", "world", "severe", "none"]),
        ("-study_date", ["none", "severe", "world", "queued", "failed"]),
        ("patient_name", ["queued", "failed", "severe", "none", "world"]),
    ],
)
def test_ordering(world, more_studies, ordering, expected):
    names = {**{k: v.pk for k, v in more_studies.items()}, "world": world.study.pk}
    answer = world.client("clinician").get(f"/api/studies/?ordering={ordering}")
    got = ids(answer)
    if ordering.endswith("study_date"):
        # Null dates sort first or last depending on the database; compare the dated ones.
        got = [pk for pk in got if pk != names["none"]]
        expected = [e for e in expected if e != "none"]
    assert got == [names[e] for e in expected]


def test_ordering_by_grade_uses_severity_not_alphabet(world, more_studies):
    answer = world.client("clinician").get("/api/studies/?ordering=-grade&status=done")
    grades = [row["grade"] for row in answer.json()["results"]]
    rank = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}
    assert [rank[g] for g in grades] == sorted((rank[g] for g in grades), reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "grade=awful",
        "date_from=yesterday",
        "ordering=password",
        "site=abc",
        # Past a 64-bit id: the database would overflow (a 500 before the fix).
        "site=99999999999999999999999",
        "site=9223372036854775808",
        "site=0",
        "site=1.5",
    ],
)
def test_bad_filter_400(world, query):
    answer = world.client("clinician").get(f"/api/studies/?{query}")
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/json"


def test_pagination(world, settings):
    for _ in range(7):
        StudyFactory(site=world.site)
    client = world.client("clinician")
    first = client.get("/api/studies/?page_size=3").json()
    assert first["count"] == 8
    assert len(first["results"]) == 3
    assert first["previous"] is None
    assert "page=2" in first["next"]
    last = client.get("/api/studies/?page_size=3&page=3").json()
    assert len(last["results"]) == 2
    assert last["next"] is None
    seen = [
        r["id"]
        for p in (1, 2, 3)
        for r in client.get(f"/api/studies/?page_size=3&page={p}").json()["results"]
    ]
    assert len(set(seen)) == 8
    assert client.get("/api/studies/?page=99").status_code == 404


def test_list_queries_do_not_grow_with_the_number_of_studies(world):
    client = world.client("clinician")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/studies/?page_size=100").status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for _ in range(30):
        StudyFactory(site=world.site, flags=["partial_head: x"])
    assert queries() == few
    assert few <= 5  # token, memberships, count, page (+ savepoint noise on some backends)


def test_detail_shape(world):
    answer = world.client("clinician").get(f"/api/studies/{world.study.pk}/")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == SUMMARY_KEYS | {"progress", "error", "series", "hips", "slices"}
    assert body["progress"] == {"done": 4, "total": 4}
    assert body["error"] is None
    [series] = body["series"]
    assert set(series) == {
        "id",
        "series_instance_uid",
        "description",
        "instance_count",
        "weighting",
        "plane",
        "graded",
        "not_graded_reason",
        "analysis",
        "instances",
    }
    assert series["series_instance_uid"] == world.phantom.series_instance_uid
    # The phantom writer's header: spin echo, TR 500 ms, TE 10 ms.
    assert (series["weighting"], series["plane"], series["graded"]) == ("T1", "axial", True)
    assert series["not_graded_reason"] is None
    assert series["instance_count"] == 4
    assert set(series["analysis"]) == {
        "id",
        "status",
        "model_version",
        "error",
        "failure_reason",
        "started",
        "finished",
    }
    assert series["analysis"]["status"] == "done"
    instance = series["instances"][0]
    assert set(instance) == {
        "id",
        "sop_instance_uid",
        "frame_number",
        "instance_number",
        "slice_location",
        "image_url",
        "labelmap_url",
        "ai_labelmap_url",
        "labelmap_edited",
    }
    assert instance["image_url"] == f"/api/instances/{instance['id']}/dicom/"
    assert instance["labelmap_url"] == f"/api/instances/{instance['id']}/labelmap.png"
    assert instance["ai_labelmap_url"] == f"/api/instances/{instance['id']}/labelmap.png?version=ai"
    assert instance["labelmap_edited"] is False
    assert instance["frame_number"] is None  # single-frame files
    locations = [i["slice_location"] for i in series["instances"]]
    assert locations == sorted(locations)

    assert {h["side"] for h in body["hips"]} == {"left", "right"}
    for hip in body["hips"]:
        assert set(hip) == {
            "series_instance_uid",
            "side",
            "proportion",
            "head_volume_mm3",
            "necrosis_volume_mm3",
            "ai_grade",
            "grade",
            "flags",
            "ai_changed_since_review",
            "ai_grade_at_review",
            "revisions",
            "jic_type",
            "kerboul_angle_deg",
            "kerboul_partial",
            "jic_source",
            "kerboul_source",
            "extent",
            "stage",
            "stage_source",
            "ai_proportion",
            "proportion_interval",
            "grade_probabilities",
            "method_proportions",
        }
        assert 0 <= hip["proportion"] <= 1
        assert hip["revisions"] == []
    right = next(h for h in body["hips"] if h["side"] == "right")
    assert right["ai_grade"] == "moderate"  # the phantom's right hip
    # Moderate is extent B; from the MRI alone the stage waits for a radiograph.
    assert right["extent"] == "B"
    assert right["stage"] == "MRI-positive, radiograph needed to stage"
    assert right["stage_source"] == "mri"
    # No coronal T1 graded: no JIC type, no Kerboul angle.
    assert right["jic_type"] is None and right["kerboul_angle_deg"] is None


def test_detail_slices_in_stack_order(world):
    body = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()
    expected = [i.sop_instance_uid for i in world.instances]
    assert [s["sop_instance_uid"] for s in body["slices"]] == expected
    assert [s["instance_number"] for s in body["slices"]] == [1, 2, 3, 4]
    slice_ = body["slices"][0]
    assert set(slice_) == {
        "sop_instance_uid",
        "frame_number",
        "series_instance_uid",
        "instance_number",
        "hips",
    }
    assert slice_["hips"]
    assert set(slice_["hips"][0]) == {
        "side",
        "proportion",
        "grade",
        "head_area_mm2",
        "necrosis_area_mm2",
        "flags",
        "proportion_interval",
        "grade_probabilities",
    }


def test_detail_shows_the_engines_uncertainty_on_hips_and_slices(world):
    """The interval and grade probabilities the engine stored (step 14) appear on the
    hips and the slices; null where the engine gave none (this world's stored rows
    predate them until updated here)."""
    from grading.models import HipResult, SliceResult

    url = f"/api/studies/{world.study.pk}/"
    body = world.client("clinician").get(url).json()
    assert all(h["proportion_interval"] is None for h in body["hips"])
    assert all(h["grade_probabilities"] is None for s in body["slices"] for h in s["hips"])
    probabilities = {"none": 0.0, "mild": 0.1, "moderate": 0.8, "severe": 0.1}
    HipResult.objects.filter(analysis__series__study=world.study, side="right").update(
        ai_proportion_interval=[0.16, 0.27],
        ai_grade_probabilities=probabilities,
        ai_method_proportions={"threshold": 0.21, "learned": 0.19},
    )
    for row in SliceResult.objects.filter(analysis__series__study=world.study):
        row.hips = [{**h, "proportion_interval": [0.1, 0.2]} for h in row.hips]
        row.save()
    body = world.client("student").get(url).json()
    right = next(h for h in body["hips"] if h["side"] == "right")
    assert right["proportion_interval"] == [0.16, 0.27]
    assert right["grade_probabilities"] == probabilities
    assert right["method_proportions"] == {"threshold": 0.21, "learned": 0.19}
    assert all(h["proportion_interval"] == [0.1, 0.2] for s in body["slices"] for h in s["hips"])


def test_detail_in_reverse_instance_order_still_follows_position(world):
    # Stack order is the position along the normal, not the instance number.
    from grading.models import Instance

    for instance in world.instances:
        Instance.objects.filter(pk=instance.pk).update(
            instance_number=100 - instance.instance_number
        )
    body = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()
    assert [s["sop_instance_uid"] for s in body["slices"]] == [
        i.sop_instance_uid for i in world.instances
    ]


def test_detail_records_a_view(world):
    client = world.client("teacher")
    client.get(f"/api/studies/{world.study.pk}/", REMOTE_ADDR="192.0.2.44")
    event = AuditEvent.objects.filter(study=world.study, action="study.view").get()
    assert event.actor == world.users["teacher"]
    assert event.client_address == "192.0.2.44"


def test_polling_the_detail_audits_one_view_per_person_per_window(world, settings, monkeypatch):
    """The viewer polls the detail while an analysis runs: one ``study.view`` per person,
    study and ``ONFH_STUDY_VIEW_AUDIT_WINDOW_S``, the first always, then again after the
    window; the chain and ``verify_audit`` stay intact."""
    from django.utils import timezone

    from grading.services import audit_verify

    settings.ONFH_STUDY_VIEW_AUDIT_WINDOW_S = 600
    other = StudyFactory(site=world.site)
    teacher, clinician = world.client("teacher"), world.client("clinician")
    for _ in range(5):
        assert teacher.get(f"/api/studies/{world.study.pk}/").status_code == 200
    clinician.get(f"/api/studies/{world.study.pk}/", REMOTE_ADDR="192.0.2.45")
    clinician.get(f"/api/studies/{world.study.pk}/", REMOTE_ADDR="192.0.2.46")
    teacher.get(f"/api/studies/{other.pk}/")

    def views():
        return [
            (e.actor.username, int(e.object_id))
            for e in AuditEvent.objects.filter(action="study.view").order_by("seq")
        ]

    assert views() == [
        (world.users["teacher"].username, world.study.pk),
        (world.users["clinician"].username, world.study.pk),
        (world.users["teacher"].username, other.pk),
    ]
    first = AuditEvent.objects.filter(action="study.view").order_by("seq").first()
    later = first.time + dt.timedelta(seconds=601)
    monkeypatch.setattr(timezone, "now", lambda: later)
    teacher.get(f"/api/studies/{world.study.pk}/")
    teacher.get(f"/api/studies/{world.study.pk}/")
    assert views()[3:] == [(world.users["teacher"].username, world.study.pk)]
    monkeypatch.undo()
    assert audit_verify().ok


def test_study_view_window_zero_audits_every_view(world, settings):
    settings.ONFH_STUDY_VIEW_AUDIT_WINDOW_S = 0
    for _ in range(3):
        world.client("teacher").get(f"/api/studies/{world.study.pk}/")
    assert AuditEvent.objects.filter(action="study.view").count() == 3


def test_detail_before_analysis(world):
    study = StudyFactory(site=world.site, status="queued")
    body = world.client("clinician").get(f"/api/studies/{study.pk}/").json()
    assert body["series"] == [] and body["hips"] == [] and body["slices"] == []
    assert body["grade"] is None and body["ai_grade"] is None


def test_detail_of_failed_study_has_error(world):
    study = StudyFactory(site=world.site, status="failed", error="no axial MR series")
    body = world.client("clinician").get(f"/api/studies/{study.pk}/").json()
    assert body["status"] == "failed"
    assert body["error"] == "no axial MR series"
    assert body["failure_reason"].startswith("The study has no axial MR series")
    listed = world.client("clinician").get("/api/studies/?status=failed").json()["results"]
    assert [s["failure_reason"] for s in listed if s["id"] == study.pk] == [body["failure_reason"]]
    done = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()
    assert done["failure_reason"] is None


@pytest.mark.parametrize("who", ["foreign", "clinician"])
def test_detail_404_for_foreign_or_missing(world, who):
    study_id = world.study.pk if who == "foreign" else 999999
    answer = world.client(who).get(f"/api/studies/{study_id}/")
    assert answer.status_code == 404
    assert not AuditEvent.objects.filter(action="study.view").exists()


def test_shared_study_is_visible_to_a_foreign_clinician(world):
    from grading.models import StudyShare

    StudyShare.objects.create(study=world.study, user=world.users["foreign"])
    client = world.client("foreign")
    assert client.get(f"/api/studies/{world.study.pk}/").status_code == 200
    assert world.study.pk in ids(client.get("/api/studies/"))


# --- students ---------------------------------------------------------------------------


def test_student_sees_studies_without_identifiers(world, more_studies):
    client = world.client("student")
    listing = client.get("/api/studies/")
    assert listing.status_code == 200
    assert listing.json()["count"] == 5
    for row in listing.json()["results"]:
        assert row["patient_name"] is None
        assert row["patient_id"] is None
    assert_no_patient_identifiers(listing.content)
    detail = client.get(f"/api/studies/{world.study.pk}/")
    assert detail.status_code == 200
    assert detail.json()["patient_name"] is None
    assert detail.json()["patient_id"] is None
    assert detail.json()["hips"]  # the results are there
    assert_no_patient_identifiers(detail.content)


def test_student_cannot_find_a_patient_by_searching(world, more_studies):
    client = world.client("student")
    assert client.get("/api/studies/?search=DOE").json()["count"] == 0
    assert client.get("/api/studies/?search=MRN-4711").json()["count"] == 0
    # Not identifying: the description and the UID still work.
    assert client.get("/api/studies/?search=hips").json()["count"] == 1


def test_student_ordering_by_patient_is_ignored(world, more_studies):
    client = world.client("student")
    by_name = ids(client.get("/api/studies/?ordering=patient_name"))
    default = ids(client.get("/api/studies/"))
    assert by_name == default


def test_student_at_one_site_clinician_at_another(world, more_studies):
    from tests.grading_tests.factories import MembershipFactory

    MembershipFactory(user=world.users["student"], site=world.other_site, role="clinician")
    rows = world.client("student").get("/api/studies/").json()["results"]
    by_site = {r["site"]["id"]: r for r in rows}
    assert by_site[world.site.pk]["patient_name"] is None
    assert by_site[world.other_site.pk]["patient_name"] == "ECHO FIVE"


def test_superuser_sees_every_study_in_full(world, more_studies):
    from rest_framework.test import APIClient

    from tests.grading_tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_superuser=True, is_staff=True))
    body = client.get("/api/studies/?search=DOE").json()
    assert [r["id"] for r in body["results"]] == [world.study.pk]
    assert body["results"][0]["patient_name"] == "DOE JANE"
    assert client.get("/api/studies/").json()["count"] == 6


def test_shared_study_for_a_user_without_a_clinical_role_is_deidentified(world):
    from rest_framework.test import APIClient

    from grading.models import StudyShare
    from tests.grading_tests.factories import UserFactory

    guest = UserFactory(username="guest")  # no site at all
    StudyShare.objects.create(study=world.study, user=guest)
    client = APIClient()
    client.force_authenticate(guest)
    detail = client.get(f"/api/studies/{world.study.pk}/")
    assert detail.status_code == 200
    assert detail.json()["patient_name"] is None
    assert_no_patient_identifiers(detail.content)
