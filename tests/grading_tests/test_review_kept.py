"""A re-analysis never drops a person's work (issue 13 item 1).

Late slices of an analysed series make the series analysed again; the clinician's grade,
its revisions and the edited masks stay, the AI's answer may change, and the hip says
"AI changed since your review" (API, audit event, live notice). And a series is not
graded while its instances are still arriving.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from grading.engine.measure import measure_labelmap, summarise_series
from grading.engine.types import SeriesResult, SliceResult
from grading.models import (
    Analysis,
    AuditEvent,
    GradeRevision,
    HipResult,
    Instance,
    LabelMap,
    OutboxMessage,
    Series,
    Study,
)
from grading.services import (
    analysis_store,
    grade_revision_create,
    labelmaps_save,
    upload_ingest,
)
from grading.services.analyses import _result_write, study_analyses_request, worker_name
from grading.services.engine import instance_read
from grading.services.labelmaps import labelmap_read
from tests.conftest import write_phantom_series


def _upload(scenario, paths) -> Study:
    report = upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        client_address=None,
        files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in paths],
    )
    assert not report.rejected
    return report.studies[0]


def _analyse(series: Series, labels_by_uid: dict[str, np.ndarray]) -> Analysis:
    """Store ``labels_by_uid`` (the series' instances, by SOPInstanceUID) as an analysis'
    answer, measured with the engine's own functions, through ``analysis_store``."""
    instances = list(Instance.objects.filter(series=series).order_by("position"))
    slices = [instance_read(i) for i in instances]
    labels = [labels_by_uid[i.sop_instance_uid] for i in instances]
    per_slice = [measure_labelmap(lab, s) for lab, s in zip(labels, slices, strict=True)]
    result = SeriesResult(
        slices=tuple(
            SliceResult(labelmap=lab, hips=h) for lab, h in zip(labels, per_slice, strict=True)
        ),
        hips=summarise_series(
            series.series_instance_uid, list(zip(slices, per_slice, strict=True))
        ),
        model_version="ground-truth",
    )
    analysis = Analysis.objects.create(
        series=series,
        status="running",
        worker=worker_name(),
        attempts=1,
        started=timezone.now(),
        heartbeat=timezone.now(),
        progress_total=len(instances),
        model_version="ground-truth",
    )
    analysis.result_file.name = _result_write(analysis, instances, result)
    analysis.save()
    assert analysis_store(analysis_id=analysis.pk)
    return analysis


@pytest.fixture
def eight_slices(tmp_path):
    return write_phantom_series(
        tmp_path, seed=5, n_slices=8, necrosis={"right": "moderate", "left": "none"}
    )


def _labels(phantom) -> dict[str, np.ndarray]:
    import pydicom

    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): phantom.labels[k]
        for k, p in enumerate(phantom.paths)
    }


@pytest.mark.django_db
def test_late_slices_keep_the_clinicians_grade_and_masks(
    scenario, eight_slices, django_capture_on_commit_callbacks
) -> None:
    labels = _labels(eight_slices)
    study = _upload(scenario, eight_slices.paths[:6])
    series = Series.objects.get()
    first = _analyse(series, labels)
    right = HipResult.objects.get(analysis=first, side="right")
    assert right.ai_grade == "moderate"
    # One slice's mask edited: the left hip's head is made smaller there.
    edited_instance = Instance.objects.filter(series=series).order_by("position")[3]
    edited = labels[edited_instance.sop_instance_uid].copy()
    left_half = np.zeros_like(edited, dtype=bool)
    left_half[:, edited.shape[1] // 2 :] = True
    edited[(edited == 1) & left_half & (np.arange(edited.shape[0])[:, None] % 2 == 0)] = 0
    labelmaps_save(
        user=scenario.clinician,
        series=series,
        labelmaps={edited_instance.sop_instance_uid: edited},
        reason="trimmed the head outline",
        client_address=None,
    )
    grade_revision_create(
        user=scenario.clinician,
        hip_result=right,
        grade="severe",
        reason="the lesion reaches the weight-bearing dome",
        client_address=None,
    )
    right.refresh_from_db()
    assert right.grade == "severe"

    # Two late slices arrive; the series is analysed again and the AI now says "mild"
    # for the right hip (its necrosis shrank to a third of what it was).
    _upload(scenario, eight_slices.paths[6:])
    shrunk = {
        uid: np.where((lab == 2) & (np.arange(lab.shape[1]) % 3 != 0), 1, lab)
        for uid, lab in labels.items()
    }
    with django_capture_on_commit_callbacks(execute=True):
        second = _analyse(series, shrunk)

    new_right = HipResult.objects.get(analysis=second, side="right")
    assert new_right.ai_grade != "moderate"
    assert new_right.grade == "severe", "the clinician's grade was lost"
    assert new_right.ai_changed_since_review
    assert new_right.ai_grade_at_review == "moderate"
    kept = GradeRevision.objects.filter(hip_result=new_right).order_by("created", "id")
    assert [r.reason for r in kept][-1] == "the lesion reaches the weight-bearing dome"
    assert [r.grade for r in kept][-1] == "severe"
    # The edited mask is the new analysis' current mask of that slice.
    current = LabelMap.objects.filter(analysis=second, instance=edited_instance).latest("version")
    assert current.kind == "edited"
    assert np.array_equal(labelmap_read(current), edited)
    # The hips follow the edited slice, not only the AI's maps.
    new_left = HipResult.objects.get(analysis=second, side="left")
    assert any(f.startswith("edited:") for f in new_left.flags)
    # Every hip's grade is its latest revision's, else the AI's (what verify_audit replays).
    for hip in HipResult.objects.filter(analysis=second).prefetch_related("revisions"):
        assert hip.grade == hip.current_grade, hip.side

    study.refresh_from_db()
    assert study.grade == "severe"
    assert study.ai_changed_since_review
    event = AuditEvent.objects.get(action="hip.ai_changed")
    assert event.study_id == study.pk
    assert event.before["ai_grade"] == "moderate" and event.after["grade"] == "severe"
    # The live notice: the event goes to the study's WebSocket groups.
    assert any(
        m.payload.get("event", {}).get("action") == "hip.ai_changed"
        for m in OutboxMessage.objects.filter(group=f"study-{study.pk}")
    )

    # The API shows it, and a person's new grade clears it.
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(scenario.clinician)
    detail = client.get(f"/api/studies/{study.pk}/").json()
    hip = next(h for h in detail["hips"] if h["side"] == "right")
    assert hip["ai_changed_since_review"] is True and hip["ai_grade_at_review"] == "moderate"
    assert hip["grade"] == "severe"
    listed = client.get("/api/studies/").json()["results"][0]
    assert listed["ai_changed_since_review"] is True
    grade_revision_create(
        user=scenario.clinician,
        hip_result=new_right,
        grade="moderate",
        reason="seen the new analysis",
        client_address=None,
    )
    new_right.refresh_from_db()
    study.refresh_from_db()
    assert not new_right.ai_changed_since_review and not study.ai_changed_since_review


@pytest.mark.django_db
def test_reanalysis_of_an_unreviewed_hip_takes_the_new_ai_grade(scenario, eight_slices) -> None:
    labels = _labels(eight_slices)
    _upload(scenario, eight_slices.paths[:6])
    series = Series.objects.get()
    _analyse(series, labels)
    _upload(scenario, eight_slices.paths[6:])
    shrunk = {uid: np.where(lab == 2, 1, lab) for uid, lab in labels.items()}
    second = _analyse(series, shrunk)
    right = HipResult.objects.get(analysis=second, side="right")
    assert right.grade == right.ai_grade == "none"
    assert not right.ai_changed_since_review
    assert not AuditEvent.objects.filter(action="hip.ai_changed").exists()


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_uploads_of_one_series_are_graded_whole(
    scenario, tmp_path, settings
) -> None:
    """Reproduces the probe: 10 uploads of 2 slices each of a 20-slice series at once,
    while ingest messages keep arriving. No analysis may be requested before all 20
    slices are in and the series has been quiet for ``ONFH_INGEST_QUIET_S``."""
    settings.ONFH_INGEST_QUIET_S = 1.0
    settings.ONFH_INGEST_PROCESSES = 0
    phantom = write_phantom_series(tmp_path, seed=7, n_slices=20, matrix=(128, 128))
    parts = [phantom.paths[k : k + 2] for k in range(0, 20, 2)]
    start = threading.Barrier(len(parts) + 1)
    uploads_done = threading.Event()
    errors: list[BaseException] = []
    requested: list[int] = []

    def upload(paths) -> None:
        try:
            start.wait()
            _upload(scenario, paths)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def worker() -> None:
        # An ingest message for the study may arrive at any moment (each upload sends one).
        try:
            start.wait()
            while not uploads_done.is_set():
                study = Study.objects.filter(site=scenario.site).first()
                if study is not None:
                    for analysis in study_analyses_request(study_id=study.pk):
                        requested.append(analysis.progress_total)
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(p,)) for p in parts]
    watcher = threading.Thread(target=worker)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    uploads_done.set()
    watcher.join(timeout=30)
    assert not errors, errors
    assert Instance.objects.count() == 20
    assert requested == [], f"analysed while slices were arriving: {requested} slices"
    study = Study.objects.get()
    time.sleep(settings.ONFH_INGEST_QUIET_S + 0.2)
    analyses = study_analyses_request(study_id=study.pk)
    assert [a.progress_total for a in analyses] == [20]


@pytest.mark.django_db
def test_a_series_arriving_by_an_association_waits_for_its_end(scenario, eight_slices) -> None:
    """A DICOM association marks its series until it ends; a mark left by a receiver
    that died stops counting at its expiry."""
    from datetime import timedelta

    from grading.models import IncomingSeries
    from grading.services.arrivals import SeriesArrivals, incoming_series_prune

    study = _upload(scenario, eight_slices.paths[:6])
    arrivals = SeriesArrivals(site=scenario.site, receiver="association")
    arrivals.mark(eight_slices.series_instance_uid)
    assert study_analyses_request(study_id=study.pk) == []
    arrivals.end()
    assert [a.progress_total for a in study_analyses_request(study_id=study.pk)] == [6]

    Analysis.objects.all().delete()
    arrivals.mark(eight_slices.series_instance_uid)
    IncomingSeries.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert len(study_analyses_request(study_id=study.pk)) == 1
    assert incoming_series_prune() == 1


def _one_side_edited(series: Series, labels: dict[str, np.ndarray], *, image_half: str):
    """One slice's label map with the head on one half of the image (``"left"``: columns
    below the middle, where the phantom's right hip lies) made smaller."""
    instance = Instance.objects.filter(series=series).order_by("position")[3]
    edited = labels[instance.sop_instance_uid].copy()
    half = np.zeros_like(edited, dtype=bool)
    if image_half == "left":
        half[:, : edited.shape[1] // 2] = True
    else:
        half[:, edited.shape[1] // 2 :] = True
    edited[(edited == 1) & half & (np.arange(edited.shape[0])[:, None] % 2 == 0)] = 0
    return instance, edited


@pytest.mark.django_db
def test_a_mask_edit_on_one_hip_keeps_the_other_hips_manual_grade(scenario, eight_slices) -> None:
    labels = _labels(eight_slices)
    _upload(scenario, eight_slices.paths)
    series = Series.objects.get()
    analysis = _analyse(series, labels)
    left = HipResult.objects.get(analysis=analysis, side="left")
    right = HipResult.objects.get(analysis=analysis, side="right")
    assert left.ai_grade == "none" and right.ai_grade == "moderate"
    grade_revision_create(
        user=scenario.clinician,
        hip_result=left,
        grade="mild",
        reason="a small subchondral lesion the AI missed",
        client_address=None,
    )
    right_before = HipResult.objects.get(pk=right.pk)
    # The right hip (image left half) is edited: the left hip's mask is untouched.
    instance, edited = _one_side_edited(series, labels, image_half="left")
    labelmaps_save(
        user=scenario.clinician,
        series=series,
        labelmaps={instance.sop_instance_uid: edited},
        reason="trimmed the right head outline",
        client_address=None,
    )
    left.refresh_from_db()
    assert left.grade == "mild", "the clinician's grade of the other hip was overwritten"
    assert not any(f.startswith("edited:") for f in left.flags)
    assert [r.source for r in GradeRevision.objects.filter(hip_result=left)] == ["manual"]
    right.refresh_from_db()
    assert right.head_volume_mm3 < right_before.head_volume_mm3
    assert any(f.startswith("edited:") for f in right.flags)
    event = AuditEvent.objects.get(action="labelmap.edit")
    assert [h["side"] for h in event.after["hips"]] == ["right"]

    # An edit of the left hip itself does recompute its grade (a mask-edit revision).
    instance, edited = _one_side_edited(series, labels, image_half="right")
    current = labelmap_read(
        LabelMap.objects.filter(analysis=analysis, instance=instance).latest("version")
    )
    edited = np.where(edited != labels[instance.sop_instance_uid], edited, current)
    labelmaps_save(
        user=scenario.clinician,
        series=series,
        labelmaps={instance.sop_instance_uid: edited},
        reason="trimmed the left head outline",
        client_address=None,
    )
    left.refresh_from_db()
    assert any(f.startswith("edited:") for f in left.flags)
    assert left.grade == left.current_grade


@pytest.mark.django_db
def test_a_mask_edit_on_a_hip_the_ai_changed_counts_as_a_review(scenario, eight_slices) -> None:
    labels = _labels(eight_slices)
    study = _upload(scenario, eight_slices.paths[:6])
    series = Series.objects.get()
    first = _analyse(series, labels)
    grade_revision_create(
        user=scenario.clinician,
        hip_result=HipResult.objects.get(analysis=first, side="right"),
        grade="severe",
        reason="the lesion reaches the weight-bearing dome",
        client_address=None,
    )
    _upload(scenario, eight_slices.paths[6:])
    shrunk = {
        uid: np.where((lab == 2) & (np.arange(lab.shape[1]) % 3 != 0), 1, lab)
        for uid, lab in labels.items()
    }
    second = _analyse(series, shrunk)
    right = HipResult.objects.get(analysis=second, side="right")
    assert right.ai_changed_since_review and right.grade == "severe"
    study.refresh_from_db()
    assert study.ai_changed_since_review

    instance, edited = _one_side_edited(series, shrunk, image_half="left")
    labelmaps_save(
        user=scenario.clinician,
        series=series,
        labelmaps={instance.sop_instance_uid: edited},
        reason="checked the new analysis, trimmed the head",
        client_address=None,
    )
    right.refresh_from_db()
    study.refresh_from_db()
    assert not right.ai_changed_since_review and right.ai_grade_at_review is None
    assert not study.ai_changed_since_review
    event = AuditEvent.objects.get(action="hip.reviewed")
    assert event.object_id == str(right.pk) and event.actor_id == scenario.clinician.pk
    assert event.before["ai_grade_at_review"] == "moderate"
    assert event.reason == "checked the new analysis, trimmed the head"


@pytest.mark.django_db
def test_the_sweep_resends_a_lost_ingest_of_late_instances(
    scenario, eight_slices, settings
) -> None:
    from grading.services.analyses import analysis_requeue_stale

    labels = _labels(eight_slices)
    _upload(scenario, eight_slices.paths[:6])
    series = Series.objects.get()
    first = _analyse(series, labels)
    Analysis.objects.filter(pk=first.pk).update(instance_count=6)
    settings.ONFH_RESEND_QUEUED_AFTER_S = 0
    assert analysis_requeue_stale() == [], "an analysis covering every instance is left alone"
    # Two late slices; their delayed ingest message is lost (the on-commit send never runs).
    _upload(scenario, eight_slices.paths[6:])
    settings.ONFH_RESEND_QUEUED_AFTER_S = 60
    assert analysis_requeue_stale() == [], "not before the series has been quiet"
    Series.objects.filter(pk=series.pk).update(last_arrival=timezone.now() - timedelta(seconds=120))
    sent = analysis_requeue_stale()
    again = Analysis.objects.exclude(pk=first.pk).get()
    assert sent == [again.pk]
    assert again.status == "queued" and again.progress_total == 8
    assert analysis_requeue_stale() == [], "a queued analysis is not asked for twice"


@pytest.mark.django_db
def test_reverting_one_hips_masks_keeps_the_other_hips_manual_grade(scenario, eight_slices) -> None:
    from grading.services import labelmaps_revert

    labels = _labels(eight_slices)
    _upload(scenario, eight_slices.paths)
    series = Series.objects.get()
    analysis = _analyse(series, labels)
    left = HipResult.objects.get(analysis=analysis, side="left")
    grade_revision_create(
        user=scenario.clinician,
        hip_result=left,
        grade="mild",
        reason="a small subchondral lesion the AI missed",
        client_address=None,
    )
    instance, edited = _one_side_edited(series, labels, image_half="left")
    labelmaps_save(
        user=scenario.clinician,
        series=series,
        labelmaps={instance.sop_instance_uid: edited},
        reason="trimmed the right head outline",
        client_address=None,
    )
    labelmaps_revert(
        user=scenario.clinician, series=series, reason="back to the AI", client_address=None
    )
    left.refresh_from_db()
    assert left.grade == "mild", "the revert overwrote the other hip's clinician grade"
    right = HipResult.objects.get(analysis=analysis, side="right")
    assert right.grade == right.ai_grade and right.flags == right.ai_flags
    event = AuditEvent.objects.get(action="labelmap.revert")
    assert [h["side"] for h in event.before["hips"]] == ["right"]
