"""Model fields, constraints and clean()."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from grading import models
from tests.grading_tests.factories import (
    AnalysisFactory,
    GradeRevisionFactory,
    HipResultFactory,
    InstanceFactory,
    MembershipFactory,
    SeriesFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _integrity(fn) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_membership_unique_per_user_and_site() -> None:
    m = MembershipFactory()
    _integrity(lambda: models.Membership.objects.create(user=m.user, site=m.site, role="student"))


def test_membership_role_must_be_known() -> None:
    m = MembershipFactory.build(user=UserFactory(), site=SiteFactory(), role="janitor")
    with pytest.raises(ValidationError):
        m.full_clean()
    _integrity(lambda: m.save())


def test_study_uid_unique_per_site_but_not_across_sites() -> None:
    study = StudyFactory()
    _integrity(
        lambda: models.Study.objects.create(
            site=study.site, study_instance_uid=study.study_instance_uid
        )
    )
    other = StudyFactory(site=SiteFactory(), study_instance_uid=study.study_instance_uid)
    assert other.pk


def test_series_and_instance_uids_are_unique_in_their_study_and_series() -> None:
    """Per site in the ingest (issue 13 item 7); the database holds a series UID unique
    within its study and a SOP Instance UID within its series, and lets another site's
    study carry the same UIDs."""
    series = SeriesFactory()
    _integrity(
        lambda: SeriesFactory(study=series.study, series_instance_uid=series.series_instance_uid)
    )
    elsewhere = SeriesFactory(series_instance_uid=series.series_instance_uid)
    assert elsewhere.study.site_id != series.study.site_id
    instance = InstanceFactory()
    _integrity(
        lambda: InstanceFactory(series=instance.series, sop_instance_uid=instance.sop_instance_uid)
    )
    InstanceFactory(sop_instance_uid=instance.sop_instance_uid)  # another site's series


def test_instance_clean_checks_digest_and_spacing() -> None:
    instance = InstanceFactory.build(series=SeriesFactory(), sha256="abc", pixel_spacing_row_mm=-1)
    with pytest.raises(ValidationError) as info:
        instance.clean()
    assert "sha256" in info.value.message_dict


def test_only_one_active_analysis_per_series() -> None:
    series = SeriesFactory()
    AnalysisFactory(series=series, status="queued")
    _integrity(lambda: AnalysisFactory(series=series, status="running"))
    AnalysisFactory(series=series, status="done")
    AnalysisFactory(series=series, status="failed", error="x")


def test_analysis_progress_within_total_and_failed_needs_error() -> None:
    _integrity(lambda: AnalysisFactory(progress_done=3, progress_total=2))
    analysis = AnalysisFactory.build(series=SeriesFactory(), status="failed", error="")
    with pytest.raises(ValidationError):
        analysis.clean()


def test_hip_proportion_is_a_fraction_and_necrosis_within_head() -> None:
    _integrity(lambda: HipResultFactory(proportion=1.5))
    _integrity(lambda: HipResultFactory(necrosis_volume_mm3=20000.0))
    hip = HipResultFactory(side="left")
    _integrity(lambda: HipResultFactory(side="left", analysis=hip.analysis))


def test_grade_revision_needs_a_reason_and_a_valid_grade() -> None:
    _integrity(lambda: GradeRevisionFactory(reason=""))
    _integrity(lambda: GradeRevisionFactory(grade="terrible"))
    with pytest.raises(ValidationError):
        GradeRevisionFactory.build(reason="  ").clean()


def test_current_grade_is_latest_revision_else_ai_grade() -> None:
    hip = HipResultFactory(ai_grade="mild", grade="mild")
    assert hip.current_grade == "mild"
    GradeRevisionFactory(hip_result=hip, grade="moderate")
    GradeRevisionFactory(hip_result=hip, grade="severe")
    hip.refresh_from_db()
    assert hip.current_grade == "severe"
    assert hip.ai_grade == "mild"


def test_labelmap_versions_unique_and_edit_needs_author() -> None:
    instance = InstanceFactory()
    analysis = AnalysisFactory(series=instance.series)
    models.LabelMap.objects.create(
        instance=instance, analysis=analysis, version=1, kind="ai", file="labelmaps/x.png"
    )
    _integrity(
        lambda: models.LabelMap.objects.create(
            instance=instance, analysis=analysis, version=1, kind="ai", file="labelmaps/y.png"
        )
    )
    _integrity(
        lambda: models.LabelMap.objects.create(
            instance=instance, analysis=analysis, version=2, kind="edited", file="labelmaps/z.png"
        )
    )


def test_worst_grade() -> None:
    assert models.worst_grade([None, "mild", "severe", "none"]) == "severe"
    assert models.worst_grade([None]) is None


def test_every_model_has_an_admin_page_that_loads(client) -> None:
    from django.apps import apps
    from django.contrib import admin
    from django.urls import reverse

    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    HipResultFactory()
    models_of_app = [
        m
        for m in apps.get_app_config("grading").get_models()
        if m.__module__.startswith("grading.models")
    ]
    assert models_of_app
    for model in models_of_app:
        assert admin.site.is_registered(model), model
        url = reverse(f"admin:grading_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url


def test_engine_device_follows_onfh_device(settings) -> None:
    from unittest import mock

    from grading.services.engine import engine_device

    for wanted, cuda, expected in [
        ("cpu", True, "cpu"),
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cuda", False, "cpu"),
        ("cuda", True, "cuda"),
    ]:
        settings.ONFH_DEVICE = wanted
        with mock.patch("torch.cuda.is_available", return_value=cuda):
            assert engine_device() == expected, (wanted, cuda)
