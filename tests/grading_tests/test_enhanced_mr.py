"""An Enhanced MR series (Legacy Converted Enhanced MR written by highdicom) is stored one
instance per frame, graded like the same slices sent as classic files, shown frame by frame
and edited frame by frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from grading.dicom.protocol_writer import SeriesPlan, write_protocol_study
from grading.engine.phantoms.volume import make_volume_phantom
from grading.models import HipResult, Instance, Series
from grading.services import upload_ingest
from grading.services.analyses import analysis_run, study_analyses_request
from tests.grading_tests.apis.conftest import png_base64

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    phantom = make_volume_phantom(21)
    out: dict[str, list[Path]] = {}
    for kind, enhanced in (("classic", False), ("enhanced", True)):
        plan = (SeriesPlan("AX T1 TSE", "axial", "T1", 8, 4.0, pixel_mm=1.2, enhanced=enhanced),)
        folder = tmp_path_factory.mktemp(kind)
        written = write_protocol_study(phantom, folder, plans=plan, patient_id=f"P-{kind}")
        out[kind] = written[0].paths
    return out


def _upload(scenario, paths: list[Path]):
    return upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        client_address=None,
        files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in paths],
    )


@pytest.mark.slow
def test_enhanced_series_is_graded_like_its_classic_twin(scenario, two_studies) -> None:
    assert len(two_studies["enhanced"]) == 1
    hips = {}
    for kind, paths in two_studies.items():
        report = _upload(scenario, paths)
        assert report.rejected == [] and report.accepted == len(paths)
        study = report.studies[0]
        series = Series.objects.get(study=study)
        assert (series.weighting, series.plane, series.graded) == ("T1", "axial", True)
        assert series.instances.count() == 8
        [analysis] = study_analyses_request(study_id=study.pk)
        assert analysis_run(analysis_id=analysis.pk)
        hips[kind] = {
            h.side: (round(h.proportion, 6), h.ai_grade, round(h.head_volume_mm3, 1))
            for h in HipResult.objects.filter(analysis__series=series)
        }
    frames = Instance.objects.filter(series__study__patient_id="P-enhanced")
    assert sorted(frames.values_list("frame_number", flat=True)) == list(range(1, 9))
    assert hips["enhanced"] == hips["classic"]


@pytest.mark.slow
def test_enhanced_series_in_the_api_and_a_frame_edit(scenario, two_studies) -> None:
    report = _upload(scenario, two_studies["enhanced"])
    study = report.studies[0]
    [analysis] = study_analyses_request(study_id=study.pk)
    assert analysis_run(analysis_id=analysis.pk)
    client = APIClient()
    client.force_authenticate(scenario.clinician)
    body = client.get(f"/api/studies/{study.pk}/").json()
    [series] = body["series"]
    urls = [i["image_url"] for i in series["instances"]]
    base = {u.split("?")[0] for u in urls}
    assert len(base) == 1  # one file, fetched once
    assert sorted(int(u.split("frame=")[1]) for u in urls) == list(range(1, 9))
    assert sorted(s["frame_number"] for s in body["slices"]) == list(range(1, 9))
    image = client.get(base.pop())
    assert image.status_code == 200
    # Erase the masks of frame 3 only.
    frame3 = next(i for i in series["instances"] if i["frame_number"] == 3)
    zeros = np.zeros(
        (Instance.objects.get(pk=frame3["id"]).rows, Instance.objects.get(pk=frame3["id"]).columns),
        np.uint8,
    )
    answer = client.post(
        f"/api/series/{series['id']}/labelmaps/",
        {
            "reason": "frame 3 has no head",
            "labelmaps": [
                {
                    "sop_instance_uid": frame3["sop_instance_uid"],
                    "frame_number": 3,
                    "png_base64": png_base64(zeros),
                }
            ],
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    after = {s["frame_number"]: s["hips"] for s in answer.json()["slices"]}
    assert after[3] == []
    edited = [
        i["frame_number"] for i in answer.json()["series"][0]["instances"] if i["labelmap_edited"]
    ]
    assert edited == [3]
    # The SR and SEG of the series reference the multi-frame source by frame.
    for kind in ("sr", "seg"):
        exported = client.get(f"/api/series/{series['id']}/export/{kind}/")
        assert exported.status_code == 200, (kind, exported.content[:500])
    # Without the frame the SOP Instance UID names no single slice.
    answer = client.post(
        f"/api/series/{series['id']}/labelmaps/",
        {
            "reason": "x",
            "labelmaps": [
                {"sop_instance_uid": frame3["sop_instance_uid"], "png_base64": png_base64(zeros)}
            ],
        },
        format="json",
    )
    assert answer.status_code == 400
