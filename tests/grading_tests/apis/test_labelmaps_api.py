"""Instance files (DICOM, label map PNG) and label map save / revert."""

from __future__ import annotations

import base64
import io

import numpy as np
import pydicom
import pytest

from grading.dicom.reader import read_mr_slice
from grading.engine.measure import measure_labelmap, summarise_series
from grading.models import AuditEvent, LabelMap
from tests.grading_tests.apis.conftest import (
    assert_no_patient_identifiers,
    png_array,
    png_base64,
    png_bytes,
)
from tests.grading_tests.factories import InstanceFactory, SeriesFactory, StudyFactory

pytestmark = pytest.mark.django_db


def content(response) -> bytes:
    return b"".join(response.streaming_content)


# --- GET instances/{id}/dicom/ -------------------------------------------------------------


def test_dicom_is_the_stored_file(world):
    instance = world.instances[0]
    answer = world.client("clinician").get(f"/api/instances/{instance.pk}/dicom/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/dicom"
    assert f"{instance.sop_instance_uid}.dcm" in answer["Content-Disposition"]
    with instance.file.open("rb") as handle:
        assert content(answer) == handle.read()


def test_dicom_when_the_client_asks_for_application_dicom(world):
    instance = world.instances[0]
    client = world.client("clinician")
    answer = client.get(f"/api/instances/{instance.pk}/dicom/", HTTP_ACCEPT="application/dicom")
    assert answer.status_code == 200
    missing = client.get("/api/instances/999999/dicom/", HTTP_ACCEPT="application/dicom")
    assert missing.status_code == 404


def test_dicom_for_a_student_is_deidentified(world):
    instance = world.instances[1]
    answer = world.client("student").get(f"/api/instances/{instance.pk}/dicom/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/dicom"
    data = content(answer)
    assert_no_patient_identifiers(data, dicom=True)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert str(ds.PatientName) == ""
    assert ds.PatientID == ""
    assert ds.PatientBirthDate == ""
    assert ds.SOPInstanceUID == instance.sop_instance_uid
    original = read_mr_slice(world.phantom.paths[1])
    assert np.array_equal(read_mr_slice(data).pixels, original.pixels)


def test_dicom_404_for_foreign_and_missing(world):
    instance = world.instances[0]
    assert world.client("foreign").get(f"/api/instances/{instance.pk}/dicom/").status_code == 404
    assert world.client("clinician").get("/api/instances/999999/dicom/").status_code == 404


# --- GET instances/{id}/labelmap.png --------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?version=current", "?version=ai"])
def test_labelmap_png(world, query):
    instance = world.instances[2]
    answer = world.client("student").get(f"/api/instances/{instance.pk}/labelmap.png{query}")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "image/png"
    array = png_array(content(answer))
    assert array.dtype == np.uint8
    assert array.shape == (instance.rows, instance.columns)
    assert set(np.unique(array).tolist()) <= {0, 1, 2}
    assert np.array_equal(array, world.phantom.labels[instance.sop_instance_uid])


def test_labelmap_bad_version_400(world):
    answer = world.client("clinician").get(
        f"/api/instances/{world.instances[0].pk}/labelmap.png?version=v2"
    )
    assert answer.status_code == 400


def test_labelmap_404_before_analysis_and_for_foreign(world):
    instance = InstanceFactory(series=SeriesFactory(study=StudyFactory(site=world.site)))
    client = world.client("clinician")
    assert client.get(f"/api/instances/{instance.pk}/labelmap.png").status_code == 404
    answer = world.client("foreign").get(f"/api/instances/{world.instances[0].pk}/labelmap.png")
    assert answer.status_code == 404


# --- POST series/{id}/labelmaps/ and revert -------------------------------------------------


def edited_labelmap(labels: np.ndarray) -> np.ndarray:
    """Half of the viable femoral head (label 1) becomes necrosis (2), on both sides:
    every viable pixel in the lower half of the image rows that hold head."""
    edited = labels.copy()
    rows = np.nonzero((labels > 0).any(axis=1))[0]
    middle = (rows.min() + rows.max()) // 2
    lower = np.zeros_like(labels, dtype=bool)
    lower[middle:] = True
    edited[(labels == 1) & lower] = 2
    return edited


def save(world, who="clinician", *, items=None, reason="necrosis undercalled on slice 2"):
    instance = world.instances[1]
    if items is None:
        edited = edited_labelmap(world.phantom.labels[instance.sop_instance_uid])
        items = [{"sop_instance_uid": instance.sop_instance_uid, "png_base64": png_base64(edited)}]
    body = {"labelmaps": items}
    if reason is not None:
        body["reason"] = reason
    return world.client(who).post(f"/api/series/{world.series.pk}/labelmaps/", body, format="json")


def test_save_recomputes_proportions_with_the_engine(world):
    instance = world.instances[1]
    truth = world.phantom.labels
    edited = edited_labelmap(truth[instance.sop_instance_uid])
    assert (edited == 2).sum() > (truth[instance.sop_instance_uid] == 2).sum()

    answer = save(world)
    assert answer.status_code == 201, answer.json()
    detail = answer.json()
    assert detail["id"] == world.study.pk

    # Per slice: what the engine measures on the edited map.
    mr_slices = {
        i.sop_instance_uid: read_mr_slice(path)
        for i, path in zip(world.instances, world.phantom.paths, strict=True)
    }
    expected_slice = {
        h.side: h for h in measure_labelmap(edited, mr_slices[instance.sop_instance_uid])
    }
    got_slice = next(
        s for s in detail["slices"] if s["sop_instance_uid"] == instance.sop_instance_uid
    )
    assert {h["side"] for h in got_slice["hips"]} == set(expected_slice)
    for hip in got_slice["hips"]:
        assert hip["proportion"] == pytest.approx(expected_slice[hip["side"]].proportion, abs=1e-9)
        assert hip["necrosis_area_mm2"] == pytest.approx(
            expected_slice[hip["side"]].necrosis_area_mm2, rel=1e-9
        )

    # Per hip over the series: summarise_series over the current maps.
    current = {i.sop_instance_uid: truth[i.sop_instance_uid] for i in world.instances}
    current[instance.sop_instance_uid] = edited
    per_slice = [
        (
            mr_slices[i.sop_instance_uid],
            measure_labelmap(current[i.sop_instance_uid], mr_slices[i.sop_instance_uid]),
        )
        for i in world.instances
    ]
    expected_hips = {
        h.side: h for h in summarise_series(world.series.series_instance_uid, per_slice)
    }
    for hip in detail["hips"]:
        assert hip["proportion"] == pytest.approx(expected_hips[hip["side"]].proportion, abs=1e-9)
        assert hip["grade"] == expected_hips[hip["side"]].grade.value
        assert any(f.startswith("edited") for f in hip["flags"])

    # The edited slice is flagged and served; the AI's map is kept.
    entry = next(i for i in detail["series"][0]["instances"] if i["id"] == instance.pk)
    assert entry["labelmap_edited"] is True
    client = world.client("clinician")
    now = png_array(content(client.get(entry["labelmap_url"])))
    assert np.array_equal(now, edited)
    ai = png_array(content(client.get(entry["ai_labelmap_url"])))
    assert np.array_equal(ai, truth[instance.sop_instance_uid])
    others = [i for i in detail["series"][0]["instances"] if i["id"] != instance.pk]
    assert not any(i["labelmap_edited"] for i in others)

    event = AuditEvent.objects.get(study=world.study, action="labelmap.edit")
    assert event.reason == "necrosis undercalled on slice 2"
    assert event.actor == world.users["clinician"]


def test_revert_goes_back_to_the_ai(world):
    before = world.client("clinician").get(f"/api/studies/{world.study.pk}/").json()
    assert save(world).status_code == 201
    answer = world.client("radiologist").post(
        f"/api/series/{world.series.pk}/labelmaps/revert/",
        {"reason": "back to AI"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    detail = answer.json()
    assert not any(i["labelmap_edited"] for i in detail["series"][0]["instances"])
    for hip in detail["hips"]:
        original = next(h for h in before["hips"] if h["side"] == hip["side"])
        assert hip["proportion"] == pytest.approx(original["proportion"])
        assert hip["grade"] == original["ai_grade"]
    assert detail["slices"] == before["slices"]
    instance = world.instances[1]
    now = png_array(
        content(world.client("clinician").get(f"/api/instances/{instance.pk}/labelmap.png"))
    )
    assert np.array_equal(now, world.phantom.labels[instance.sop_instance_uid])
    assert AuditEvent.objects.filter(action="labelmap.revert").count() == 1


def test_revert_needs_a_reason(world):
    answer = world.client("clinician").post(
        f"/api/series/{world.series.pk}/labelmaps/revert/", {}, format="json"
    )
    assert answer.status_code == 400
    assert "reason" in answer.json()


def _item(world, array=None, *, raw=None, uid=None):
    instance = world.instances[1]
    if raw is None:
        array = world.phantom.labels[instance.sop_instance_uid] if array is None else array
        raw = png_base64(array)
    return {"sop_instance_uid": uid or instance.sop_instance_uid, "png_base64": raw}


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("not base64", "base64"),
        ("not a png", "PNG"),
        ("wrong size", "256x256"),
        ("value 3", "values"),
        ("rgb", "mode RGB"),
        ("16 bit", "mode"),
        ("other series", "not an instance of this series"),
        ("twice", "twice"),
        ("empty list", ""),
        ("no reason", ""),
    ],
)
def test_bad_labelmaps_400_with_reason(world, case, words):
    labels = world.phantom.labels[world.instances[1].sop_instance_uid]
    reason = "edit"
    if case == "not base64":
        items = [_item(world, raw="@@@ not base64 @@@")]
    elif case == "not a png":
        items = [_item(world, raw=base64.b64encode(b"GIF89a....").decode())]
    elif case == "wrong size":
        items = [_item(world, labels[:100, :120])]
    elif case == "value 3":
        bad = labels.copy()
        bad[0, 0] = 3
        items = [_item(world, bad)]
    elif case == "rgb":
        items = [_item(world, raw=base64.b64encode(png_bytes(labels, "RGB")).decode())]
    elif case == "16 bit":
        items = [_item(world, raw=png_base64(labels, "I;16"))]
    elif case == "other series":
        other = InstanceFactory(series=SeriesFactory(study=world.study, number=2))
        items = [_item(world, uid=other.sop_instance_uid)]
    elif case == "twice":
        items = [_item(world), _item(world)]
    elif case == "empty list":
        items = []
    else:
        items, reason = [_item(world)], None
    answer = save(world, items=items, reason=reason)
    assert answer.status_code == 400, answer.content
    if words:
        assert words in str(answer.json())
    assert not LabelMap.objects.filter(kind="edited").exists()


def test_save_without_a_finished_analysis_400(world):
    series = SeriesFactory(study=world.study, number=3)
    instance = InstanceFactory(series=series, rows=8, columns=8)
    answer = world.client("clinician").post(
        f"/api/series/{series.pk}/labelmaps/",
        {
            "reason": "x",
            "labelmaps": [
                {
                    "sop_instance_uid": instance.sop_instance_uid,
                    "png_base64": png_base64(np.zeros((8, 8), np.uint8)),
                }
            ],
        },
        format="json",
    )
    assert answer.status_code == 400
    assert "analysis" in str(answer.json())


def test_student_403_and_foreign_404(world):
    assert save(world, "student").status_code == 403
    assert save(world, "foreign").status_code == 404
    for who, status in (("student", 403), ("foreign", 404)):
        answer = world.client(who).post(
            f"/api/series/{world.series.pk}/labelmaps/revert/", {"reason": "x"}, format="json"
        )
        assert answer.status_code == status
    assert (
        world.client("clinician")
        .post("/api/series/999999/labelmaps/", {"reason": "x", "labelmaps": []}, format="json")
        .status_code
        == 404
    )
    assert not LabelMap.objects.filter(kind="edited").exists()
