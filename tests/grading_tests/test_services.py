"""Grades, label-map edits and reverts, views, shares, exports, study status."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from grading.engine.measure import measure_labelmap, summarise_series
from grading.engine.types import SeriesResult, SliceResult, Uncertainty
from grading.models import (
    Analysis,
    AuditEvent,
    GradeRevision,
    HipResult,
    Instance,
    LabelMap,
    Series,
    Study,
    StudyShare,
)
from grading.models import (
    SliceResult as SliceRow,
)
from grading.selectors import study_detail_get
from grading.services import (
    analysis_store,
    audit_verify,
    grade_revision_create,
    labelmaps_revert,
    labelmaps_save,
    study_export,
    study_share,
    study_view_record,
    upload_ingest,
)
from grading.services.analyses import _result_write, worker_name
from grading.services.engine import instance_read
from grading.services.labelmaps import labelmap_read
from grading.services.studies import _status_of

pytestmark = pytest.mark.django_db

UNCERTAINTY = Uncertainty(
    interval=(0.12, 0.2),
    grade_probabilities={"none": 0.0, "mild": 0.3, "moderate": 0.7, "severe": 0.0},
)


def analysed_study(scenario, phantom) -> Study:
    """Upload the phantom and store its ground-truth label maps as the analysis' answer,
    measured with the engine's real measure functions and stored by analysis_store."""
    report = upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        client_address=None,
        files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in phantom.paths],
    )
    series = Series.objects.get(series_instance_uid=phantom.series_instance_uid)
    instances = list(Instance.objects.filter(series=series).order_by("position"))
    slices = [instance_read(i) for i in instances]
    per_slice = [measure_labelmap(phantom.labels[k], s) for k, s in enumerate(slices)]
    hips = summarise_series(series.series_instance_uid, list(zip(slices, per_slice, strict=True)))
    # the engine's uncertainty, as step 14 attaches it (a fixed one: the rows are the test)
    per_slice = [tuple(replace(h, uncertainty=UNCERTAINTY) for h in s) for s in per_slice]
    hips = tuple(
        replace(h, uncertainty=UNCERTAINTY, method_proportions={"threshold": h.proportion})
        for h in hips
    )
    result = SeriesResult(
        slices=tuple(
            SliceResult(labelmap=phantom.labels[k], hips=h) for k, h in enumerate(per_slice)
        ),
        hips=hips,
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
    return report.studies[0]


@pytest.fixture
def study(scenario, phantom_files) -> Study:
    return analysed_study(scenario, phantom_files)


def test_store_makes_rows_labelmaps_and_a_done_study(study, phantom_files) -> None:
    study.refresh_from_db()
    assert study.status == "done" and study.progress_done == study.progress_total == 6
    analysis = Analysis.objects.get()
    assert analysis.status == "done" and analysis.finished and "store_s" in analysis.timings
    hips = {h.side: h for h in HipResult.objects.all()}
    assert set(hips) == {"left", "right"}
    assert hips["right"].ai_grade == "moderate" and hips["left"].ai_grade == "none"
    assert study.ai_grade == study.grade == "moderate"
    assert LabelMap.objects.filter(kind="ai", version=1).count() == 6
    first = LabelMap.objects.order_by("instance__position").first()
    assert np.array_equal(labelmap_read(first), phantom_files.labels[0])
    assert SliceRow.objects.count() == 6
    # the engine's uncertainty reaches the rows: per hip, and per slice in the hips JSON
    assert hips["right"].proportion_interval == [0.12, 0.2]
    assert hips["right"].grade_probabilities == UNCERTAINTY.grade_probabilities
    assert hips["right"].ai_method_proportions == {"threshold": hips["right"].ai_proportion}
    slice_hip = SliceRow.objects.exclude(hips=[]).first().hips[0]
    assert slice_hip["proportion_interval"] == [0.12, 0.2]
    assert slice_hip["grade_probabilities"]["moderate"] == 0.7
    assert AuditEvent.objects.filter(action="analysis.done", study=study).exists()
    # A second store of a done analysis changes nothing.
    assert not analysis_store(analysis_id=analysis.pk)
    assert LabelMap.objects.count() == 6


def test_detail_selector_orders_slices_and_attaches_labelmaps(study, scenario) -> None:
    detail = study_detail_get(user=scenario.student, study_id=study.pk)
    positions = [s.instance.position for s in detail.slice_list]
    assert positions == sorted(positions) and len(positions) == 6
    instance = detail.series_list[0].instance_list[0]
    assert instance.ai_labelmap.version == 1 and instance.current_labelmap.version == 1
    assert {h.side for h in detail.hip_list} == {"left", "right"}


def _right_hip() -> HipResult:
    return HipResult.objects.get(side="right")


def test_grade_revision_by_a_clinician(study, scenario) -> None:
    hip = _right_hip()
    revision = grade_revision_create(
        user=scenario.clinician,
        hip_result=hip,
        grade="severe",
        reason="collapse on coronal",
        client_address="10.1.1.1",
    )
    hip.refresh_from_db()
    assert hip.ai_grade == "moderate" and hip.grade == "severe" == hip.current_grade
    assert revision.author == scenario.clinician and revision.source == "manual"
    study.refresh_from_db()
    assert study.grade == "severe" and study.ai_grade == "moderate"
    event = AuditEvent.objects.filter(action="grade.change").get()
    assert event.before == {"grade": "moderate"} and event.after["grade"] == "severe"
    assert event.reason == "collapse on coronal" and event.client_address == "10.1.1.1"
    assert audit_verify().ok


@pytest.mark.parametrize("who", ["student", "outsider"])
def test_grade_revision_refused_for_students_and_other_sites(study, scenario, who) -> None:
    with pytest.raises(PermissionDenied):
        grade_revision_create(
            user=getattr(scenario, who),
            hip_result=_right_hip(),
            grade="mild",
            reason="no",
            client_address=None,
        )
    assert not GradeRevision.objects.exists()


@pytest.mark.parametrize(("grade", "reason"), [("severe", ""), ("severe", "   "), ("bad", "x")])
def test_grade_revision_needs_reason_and_known_grade(study, scenario, grade, reason) -> None:
    with pytest.raises(ValidationError):
        grade_revision_create(
            user=scenario.clinician,
            hip_result=_right_hip(),
            grade=grade,
            reason=reason,
            client_address=None,
        )
    assert not GradeRevision.objects.exists()


def _series() -> Series:
    return Series.objects.get()


def _instances() -> list[Instance]:
    return list(Instance.objects.order_by("position"))


def test_labelmaps_save_recomputes_and_revert_restores(study, scenario, phantom_files) -> None:
    hip = _right_hip()
    ai = (hip.proportion, hip.necrosis_volume_mm3, hip.grade)
    # Heal the necrosis on every slice: the right hip becomes "none".
    edited = {
        i.sop_instance_uid: np.where(phantom_files.labels[k] == 2, 1, phantom_files.labels[k])
        for k, i in enumerate(_instances())
    }
    labelmaps_save(
        user=scenario.clinician,
        series=_series(),
        labelmaps=edited,
        reason="necrosis was a mimic",
        client_address="10.2.2.2",
    )
    hip.refresh_from_db()
    assert hip.necrosis_volume_mm3 == 0 and hip.proportion == 0 and hip.grade == "none"
    assert hip.ai_grade == "moderate" and hip.ai_proportion == ai[0]
    assert any(f.startswith("edited:") for f in hip.flags)
    # the AI's interval no longer describes the edited proportion; it is kept as the AI's
    assert hip.proportion_interval is None and hip.grade_probabilities is None
    assert hip.ai_proportion_interval == [0.12, 0.2]
    edited_hips = [h for row in SliceRow.objects.filter(edited=True) for h in row.hips]
    assert edited_hips and all(h["proportion_interval"] is None for h in edited_hips)
    revision = GradeRevision.objects.get(hip_result=hip)
    assert revision.source == "mask_edit" and revision.grade == "none"
    assert revision.reason == "necrosis was a mimic"
    assert LabelMap.objects.filter(kind="edited", version=2).count() == 6
    assert LabelMap.objects.filter(kind="ai", version=1).count() == 6  # kept for ever
    assert SliceRow.objects.filter(edited=True).count() == 6
    study.refresh_from_db()
    assert study.grade == "none" and study.ai_grade == "moderate"
    event = AuditEvent.objects.get(action="labelmap.edit")
    assert event.reason == "necrosis was a mimic" and event.client_address == "10.2.2.2"

    labelmaps_revert(
        user=scenario.clinician, series=_series(), reason="back to the AI", client_address=None
    )
    hip.refresh_from_db()
    assert (hip.proportion, hip.necrosis_volume_mm3, hip.grade) == ai
    assert not any(f.startswith("edited:") for f in hip.flags)
    assert hip.proportion_interval == [0.12, 0.2]
    assert GradeRevision.objects.filter(hip_result=hip, source="mask_revert").count() == 1
    current = LabelMap.objects.filter(instance=_instances()[0]).order_by("-version").first()
    assert current.version == 3 and current.kind == "ai"
    assert np.array_equal(labelmap_read(current), phantom_files.labels[0])
    assert not SliceRow.objects.filter(edited=True).exists()
    assert AuditEvent.objects.filter(action="labelmap.revert").exists()
    assert audit_verify().ok


def test_labelmaps_save_one_slice_keeps_the_others(study, scenario, phantom_files) -> None:
    instance = next(i for k, i in enumerate(_instances()) if (phantom_files.labels[k] == 2).any())
    k = _instances().index(instance)
    before = _right_hip().necrosis_volume_mm3
    healed = np.where(phantom_files.labels[k] == 2, 1, phantom_files.labels[k])
    labelmaps_save(
        user=scenario.clinician,
        series=_series(),
        labelmaps={instance.sop_instance_uid: healed},
        reason="one slice",
        client_address=None,
    )
    assert 0 < _right_hip().necrosis_volume_mm3 < before
    assert LabelMap.objects.filter(kind="edited").count() == 1


def test_labelmaps_save_keeps_necrosis_painted_outside_the_head(
    study, scenario, phantom_files
) -> None:
    """A reader's mask is stored as painted: necrosis where no head label was (a head the
    AI missed, or a stray stroke) is kept and measured, never dropped by the machine."""
    instance = _instances()[2]
    labels = phantom_files.labels[2].copy()
    labels[:6, :6] = 2  # a necrosis blob in a corner, far from the AI's femoral heads
    labelmaps_save(
        user=scenario.clinician,
        series=_series(),
        labelmaps={instance.sop_instance_uid: labels},
        reason="necrosis the AI missed",
        client_address=None,
    )
    current = LabelMap.objects.filter(instance=instance).order_by("-version").first()
    saved = labelmap_read(current)
    assert np.array_equal(saved, labels)
    assert int((saved[:6, :6] == 2).sum()) == 36
    event = AuditEvent.objects.get(action="labelmap.edit")
    assert event.after["slices"] == [instance.sop_instance_uid]


@pytest.mark.parametrize("bad", ["shape", "values", "uid"])
def test_labelmaps_save_validates_and_changes_nothing(study, scenario, phantom_files, bad) -> None:
    instance = _instances()[0]
    labels = phantom_files.labels[0].copy()
    uid = instance.sop_instance_uid
    if bad == "shape":
        labels = labels[:-1]
    elif bad == "values":
        labels[0, 0] = 3
    else:
        uid = "1.2.3.4"
    with pytest.raises(ValidationError):
        labelmaps_save(
            user=scenario.clinician,
            series=_series(),
            labelmaps={uid: labels},
            reason="x",
            client_address=None,
        )
    assert not LabelMap.objects.filter(kind="edited").exists()
    assert not AuditEvent.objects.filter(action="labelmap.edit").exists()


def test_labelmaps_refused_for_students_and_without_reason(study, scenario, phantom_files) -> None:
    uid = _instances()[0].sop_instance_uid
    with pytest.raises(PermissionDenied):
        labelmaps_save(
            user=scenario.student,
            series=_series(),
            labelmaps={uid: phantom_files.labels[0]},
            reason="x",
            client_address=None,
        )
    with pytest.raises(ValidationError):
        labelmaps_save(
            user=scenario.clinician,
            series=_series(),
            labelmaps={uid: phantom_files.labels[0]},
            reason="",
            client_address=None,
        )
    with pytest.raises(PermissionDenied):
        labelmaps_revert(user=scenario.student, series=_series(), reason="x", client_address=None)


def test_view_share_and_export_are_audited(study, scenario) -> None:
    study_view_record(user=scenario.student, study=study, client_address="10.3.3.3")
    share = study_share(
        user=scenario.clinician,
        study=study,
        with_user=scenario.outsider,
        note="second opinion",
        client_address=None,
    )
    assert StudyShare.objects.get() == share
    with pytest.raises(PermissionDenied):
        study_share(
            user=scenario.student, study=study, with_user=scenario.outsider, client_address=None
        )
    data = study_export(user=scenario.clinician, study=study, client_address=None)
    assert {h["side"] for h in data["hips"]} == {"left", "right"}
    actions = list(AuditEvent.objects.filter(study=study).values_list("action", flat=True))
    assert {"study.view", "study.share", "study.export"} <= set(actions)
    assert audit_verify().ok


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "queued"),
        (["queued"], "queued"),
        (["running"], "running"),
        (["done", "queued"], "running"),
        (["done", "failed"], "failed"),
        (["failed", "queued"], "queued"),
        (["done", "done"], "done"),
    ],
)
def test_study_status_from_its_analyses(statuses, expected) -> None:
    assert _status_of(statuses) == expected


def test_seed_demo_makes_sites_users_of_every_role_and_phantom_studies(
    settings, tmp_path, django_capture_on_commit_callbacks
) -> None:
    from unittest import mock

    from django.contrib.auth import authenticate
    from django.core.management import call_command
    from django.test import RequestFactory

    from grading import tasks
    from grading.models import Membership

    settings.ONFH_DEMO_PASSWORD = "demo-pass-123"
    with (
        mock.patch.object(tasks.study_ingest, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        call_command(
            "seed_demo",
            "--studies",
            "1",
            "--slices",
            "4",
            "--no-use-cases",
            stdout=open(os.devnull, "w"),
        )
        call_command(
            "seed_demo",
            "--studies",
            "1",
            "--slices",
            "4",
            "--no-use-cases",
            stdout=open(os.devnull, "w"),
        )
    request = RequestFactory().post("/login/")  # django-axes checks every sign-in
    assert authenticate(request, username="demo", password="demo-pass-123") is not None
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == {"clinician", "radiologist", "teacher", "student", "site_admin"}
    assert Membership.objects.get(user__username="demo").role == "clinician"
    study = Study.objects.get()
    assert study.site.code == "demo" and study.patient_id == "DEMO-001"
    assert Instance.objects.count() == 4
    delay.assert_called_once_with(study_id=study.pk)  # the second run loaded nothing
