"""PACS query/retrieve and results back to the PACS (issue 15 items 2 and 3), against a
real Orthanc: the portal C-FINDs a patient's studies, C-MOVEs one to its own receiver
(analysed like any other), and C-STOREs the SEG, the SR and a summary image back."""

from __future__ import annotations

import base64
import io
import time
from unittest import mock

import numpy as np
import pydicom
import pytest
from PIL import Image
from rest_framework.test import APIClient

from grading import tasks
from grading.interop import services as pacs_services
from grading.interop import tasks as pacs_tasks
from grading.interop.models import PacsNode, PacsSend
from grading.models import Analysis, AuditEvent, HipResult, Instance, Series, Study
from grading.services import analyses as analysis_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _add_node(people, orthanc, **extra) -> dict:
    north, users = people
    body = {
        "name": "Orthanc",
        "ae_title": "ORTHANC",
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "site": north.pk,
        **extra,
    }
    answer = _client(users["admin"]).post("/api/pacs/nodes/", body, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _retrieve_and_analyse(people, orthanc, node: dict, mr_series) -> Series:
    """C-FIND, C-MOVE through the API (the worker's task run here), then the analysis."""
    north, users = people
    clin = _client(users["clin"])
    with (
        mock.patch.object(pacs_tasks.pacs_retrieve, "delay") as retrieve,
        mock.patch.object(tasks.study_ingest, "delay") as ingest,
    ):
        answer = clin.post(
            f"/api/pacs/nodes/{node['id']}/retrieve/",
            {"study_instance_uid": mr_series.study_instance_uid},
            format="json",
        )
        assert answer.status_code == 202, answer.content
        retrieve.assert_called_once()
        pacs_tasks.pacs_retrieve(**retrieve.call_args.kwargs)
        _wait_for(lambda: ingest.called)
    study = Study.objects.get(study_instance_uid=mr_series.study_instance_uid)
    assert study.site_id == north.pk
    with mock.patch.object(analysis_services, "_send_compute"):
        tasks.study_ingest(study_id=study.pk)
    analysis = Analysis.objects.get(series__study=study)
    assert analysis_services.analysis_run(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == "done", analysis.error
    return analysis.series


def test_query_and_retrieve_a_prior_study_from_orthanc(
    people, receiver_and_orthanc, mr_series
) -> None:
    _, orthanc = receiver_and_orthanc
    north, users = people
    orthanc.upload(mr_series.paths)
    node = _add_node(people, orthanc)

    # Who may configure and see nodes.
    bad = {**node, "name": "x", "site": north.pk}
    assert _client(users["clin"]).post("/api/pacs/nodes/", bad, format="json").status_code == 403
    assert _client(users["out"]).post("/api/pacs/nodes/", bad, format="json").status_code == 404
    assert [n["id"] for n in _client(users["clin"]).get("/api/pacs/nodes/").json()] == [node["id"]]
    assert _client(users["stud"]).get("/api/pacs/nodes/").json() == []
    assert _client(users["out"]).get("/api/pacs/nodes/").json() == []
    url = f"/api/pacs/nodes/{node['id']}/studies/"
    assert _client(users["stud"]).get(url, {"PatientID": "MRN-4711"}).status_code == 404

    # C-FIND by patient ID.
    clin = _client(users["clin"])
    [found] = clin.get(url, {"PatientID": "MRN-4711"}).json()
    assert found == {
        "study_instance_uid": mr_series.study_instance_uid,
        "patient_id": "MRN-4711",
        "study_date": "20240102",
        "study_description": found["study_description"],
        "modalities": ["MR"],
        "number_of_series": 1,
        "already_here": False,
    }
    assert clin.get(url, {"PatientID": "nobody"}).json() == []
    assert clin.get(url, {"PatientID": "MRN*"}).status_code == 400

    # C-MOVE to the receiver: stored in the node's site, analysed, then "already here".
    series = _retrieve_and_analyse(people, orthanc, node, mr_series)
    assert set(
        Instance.objects.filter(series=series).values_list("sop_instance_uid", flat=True)
    ) == set(mr_series.sop_instance_uids)
    assert clin.get(url, {"PatientID": "MRN-4711"}).json()[0]["already_here"] is True
    listed = clin.get("/api/studies/").json()["results"]
    assert [s["study_instance_uid"] for s in listed] == [mr_series.study_instance_uid]

    # Every query and retrieve is audited with the user.
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", "actor_username"))
    assert ("pacs.node_create", "admin") in actions
    assert actions.count(("pacs.query", "clin")) == 3  # a refused pattern never reaches it
    assert ("pacs.retrieve", "clin") in actions and ("pacs.retrieve_done", "clin") in actions
    done = AuditEvent.objects.get(action="pacs.retrieve_done")
    assert done.after["completed"] == len(mr_series.paths) and done.after["failed"] == 0
    assert done.study.study_instance_uid == mr_series.study_instance_uid
    receive = AuditEvent.objects.get(action="study.receive")
    assert receive.after["calling_ae"] == "ORTHANC"


def test_a_retrieve_the_pacs_refuses_is_audited_as_failed(people, receiver_and_orthanc) -> None:
    _, orthanc = receiver_and_orthanc
    node = PacsNode.objects.get(pk=_add_node(people, orthanc)["id"])
    pacs_services.pacs_study_retrieve(
        node_id=node.pk, study_instance_uid="1.2.3.4", user_id=people[1]["clin"].pk
    )
    event = AuditEvent.objects.get(action="pacs.retrieve_done")
    assert event.after["state"] in ("done", "failed")
    assert event.after.get("completed", 0) == 0
    assert not Study.objects.exists()


def test_results_go_back_to_orthanc_and_a_new_grade_sends_new_instances(
    people, receiver_and_orthanc, mr_series
) -> None:
    _, orthanc = receiver_and_orthanc
    north, users = people
    orthanc.upload(mr_series.paths)
    node = _add_node(people, orthanc, send_on_confirm=True)
    series = _retrieve_and_analyse(people, orthanc, node, mr_series)
    clin = _client(users["clin"])

    # A student does not see the site's nodes, a foreign user not the series: 404 both.
    body = {"node": node["id"], "objects": ["seg", "sr", "summary"]}
    for who in ("stud", "out"):
        refused = _client(users[who]).post(f"/api/series/{series.pk}/send/", body, format="json")
        assert refused.status_code == 404
    assert not PacsSend.objects.exists()

    with mock.patch.object(pacs_tasks.pacs_send, "delay") as send_task:
        answer = clin.post(f"/api/series/{series.pk}/send/", body, format="json")
        assert answer.status_code == 202, answer.content
        assert answer.json()["state"] == "queued"
        pacs_tasks.pacs_send(**send_task.call_args.kwargs)
        pacs_tasks.pacs_send(**send_task.call_args.kwargs)  # a rerun is a no-op
    [sent] = clin.get(f"/api/series/{series.pk}/sends/").json()
    assert sent["state"] == "done" and sent["attempts"] == 1, sent
    by_kind = {item["object"]: item for item in sent["sent"]}
    assert set(by_kind) == {"seg", "sr", "summary"}

    # Orthanc has them, in the study, as the SOP classes asked for.
    stored = {
        i["MainDicomTags"]["SOPInstanceUID"]: i
        for i in orthanc.instances_of(mr_series.study_instance_uid)
    }
    for kind, sop_class in (
        ("seg", pydicom.uid.SegmentationStorage),
        ("sr", pydicom.uid.Comprehensive3DSRStorage),
        ("summary", pydicom.uid.SecondaryCaptureImageStorage),
    ):
        assert by_kind[kind]["sop_class_uid"] == sop_class
        assert by_kind[kind]["sop_instance_uid"] in stored
    summary_id = stored[by_kind["summary"]["sop_instance_uid"]]["ID"]
    summary = pydicom.dcmread(io.BytesIO(_orthanc_file(orthanc, summary_id)))
    assert summary.PatientID == "MRN-4711" and summary.BurnedInAnnotation == "YES"
    assert summary.PhotometricInterpretation == "RGB" and summary.Rows > 256

    # The site's rule: a grade confirmation sends new SR and SEG instances; the new SR
    # names the SR sent before it.
    hip = HipResult.objects.filter(analysis__series=series).first()
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as send_task:
        answer = clin.post(
            f"/api/studies/{series.study_id}/grades/",
            {
                "series_instance_uid": series.series_instance_uid,
                "side": hip.side,
                "grade": "severe",
                "reason": "reviewed",
            },
            format="json",
        )
        assert answer.status_code == 201, answer.content
        send_task.assert_called_once()
        pacs_tasks.pacs_send(**send_task.call_args.kwargs)
    second = PacsSend.objects.order_by("-id").first()
    assert second.trigger == "confirmation" and second.state == "done", second.error
    new = {item["object"]: item for item in second.sent}
    assert new["sr"]["sop_instance_uid"] != by_kind["sr"]["sop_instance_uid"]
    assert new["seg"]["sop_instance_uid"] != by_kind["seg"]["sop_instance_uid"]
    stored = {
        i["MainDicomTags"]["SOPInstanceUID"]: i
        for i in orthanc.instances_of(mr_series.study_instance_uid)
    }
    sr = pydicom.dcmread(
        io.BytesIO(_orthanc_file(orthanc, stored[new["sr"]["sop_instance_uid"]]["ID"]))
    )
    [study_ref] = sr.PredecessorDocumentsSequence
    refs = [
        r.ReferencedSOPInstanceUID
        for s in study_ref.ReferencedSeriesSequence
        for r in s.ReferencedSOPSequence
    ]
    assert refs == [by_kind["sr"]["sop_instance_uid"]]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"series.send", "series.send_done"} <= actions

    # A mask edit sends too (once, however many hips it regrades).
    instance = Instance.objects.filter(series=series).order_by("position").first()
    png = clin.get(f"/api/instances/{instance.pk}/labelmap.png")
    labels = np.array(
        Image.open(io.BytesIO(b"".join(png.streaming_content) if png.streaming else png.content))
    )
    labels[labels == 2] = 1  # the person says: no necrosis on this slice
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8)).save(buffer, format="PNG")
    body = {
        "reason": "not necrosis",
        "labelmaps": [
            {
                "sop_instance_uid": instance.sop_instance_uid,
                "png_base64": base64.b64encode(buffer.getvalue()).decode(),
            }
        ],
    }
    before = PacsSend.objects.count()
    with mock.patch.object(pacs_tasks.pacs_send, "delay") as send_task:
        answer = clin.post(f"/api/series/{series.pk}/labelmaps/", body, format="json")
        assert answer.status_code == 201, answer.content
        pacs_tasks.pacs_send(**send_task.call_args.kwargs)
    assert PacsSend.objects.count() == before + 1
    third = PacsSend.objects.order_by("-id").first()
    assert third.state == "done" and third.trigger == "confirmation", third.error
    third_seg = next(i for i in third.sent if i["object"] == "seg")
    seg = pydicom.dcmread(
        io.BytesIO(_orthanc_file(orthanc, _orthanc_id(orthanc, mr_series, third_seg)))
    )
    assert seg.SegmentationType == "BINARY" and "SEMIAUTOMATIC" in str(
        seg.SegmentSequence[0].SegmentAlgorithmType
    )


def _orthanc_id(orthanc, mr_series, item: dict) -> str:
    stored = orthanc.instances_of(mr_series.study_instance_uid)
    return next(
        i["ID"] for i in stored if i["MainDicomTags"]["SOPInstanceUID"] == item["sop_instance_uid"]
    )


def _orthanc_file(orthanc, orthanc_id: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(f"{orthanc.http}/instances/{orthanc_id}/file", timeout=60) as r:
        return r.read()


def test_a_send_to_an_unreachable_pacs_retries_with_back_off_then_fails(
    people, receiver_and_orthanc, mr_series, settings
) -> None:
    _, orthanc = receiver_and_orthanc
    orthanc.upload(mr_series.paths)
    node = _add_node(people, orthanc)
    series = _retrieve_and_analyse(people, orthanc, node, mr_series)
    settings.ONFH_PACS_SEND_ATTEMPTS = 3
    settings.ONFH_PACS_RETRY_BASE_S = 5.0
    orthanc.server.stop()  # the PACS goes away
    with mock.patch.object(pacs_tasks.pacs_send, "delay"):
        send = pacs_services.series_send_request(
            user=people[1]["clin"], series=series, node=PacsNode.objects.get(), objects=["sr"]
        )
    waits = []
    for _ in range(3):
        try:
            pacs_services.pacs_send_run(send_id=send.pk)
        except pacs_services.SendRetry as retry:
            waits.append(retry.countdown)
            send.refresh_from_db()
            assert send.state == "retrying" and "association" in send.error
    assert waits == [5.0, 10.0]
    send.refresh_from_db()
    assert send.state == "failed" and send.attempts == 3
    assert AuditEvent.objects.filter(action="series.send_failed").count() == 1
    pacs_services.pacs_send_run(send_id=send.pk)  # finished: a no-op
    send.refresh_from_db()
    assert send.attempts == 3
