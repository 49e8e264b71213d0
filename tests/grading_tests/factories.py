"""factory_boy factories for the grading domain."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from factory.django import DjangoModelFactory

from grading import models


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class SiteFactory(DjangoModelFactory):
    class Meta:
        model = models.Site

    name = factory.Sequence(lambda n: f"Hospital {n}")
    code = factory.Sequence(lambda n: f"site-{n}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = models.Membership

    user = factory.SubFactory(UserFactory)
    site = factory.SubFactory(SiteFactory)
    role = models.Role.CLINICIAN


class StudyFactory(DjangoModelFactory):
    class Meta:
        model = models.Study

    site = factory.SubFactory(SiteFactory)
    study_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.10.1.{n}")
    patient_name = factory.Sequence(lambda n: f"PATIENT {n}")
    patient_id = factory.Sequence(lambda n: f"P{n:05d}")


class SeriesFactory(DjangoModelFactory):
    class Meta:
        model = models.Series

    study = factory.SubFactory(StudyFactory)
    site = factory.LazyAttribute(lambda o: o.study.site)
    series_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.10.2.{n}")
    description = "AX T1 HIP"
    number = 1
    modality = "MR"
    plane = models.Plane.AXIAL


class InstanceFactory(DjangoModelFactory):
    """An instance row with placeholder bytes (not a readable DICOM file)."""

    class Meta:
        model = models.Instance

    series = factory.SubFactory(SeriesFactory)
    site = factory.LazyAttribute(lambda o: o.series.site)
    sop_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.10.3.{n}")
    sha256 = factory.LazyAttribute(
        lambda o: hashlib.sha256(o.sop_instance_uid.encode()).hexdigest()
    )
    size_bytes = 16
    file = factory.LazyAttribute(lambda o: ContentFile(b"not really dicom", name="x.dcm"))
    instance_number = factory.Sequence(lambda n: n + 1)
    position = factory.Sequence(lambda n: float(n) * 4.0)
    rows = 64
    columns = 64
    pixel_spacing_row_mm = 0.8
    pixel_spacing_col_mm = 0.8


class AnalysisFactory(DjangoModelFactory):
    class Meta:
        model = models.Analysis

    series = factory.SubFactory(SeriesFactory)
    status = models.AnalysisStatus.DONE
    model_version = "onfh-net-test"


class HipResultFactory(DjangoModelFactory):
    class Meta:
        model = models.HipResult

    analysis = factory.SubFactory(AnalysisFactory)
    side = models.Side.RIGHT
    ai_head_volume_mm3 = 10000.0
    ai_necrosis_volume_mm3 = 2000.0
    ai_proportion = 0.2
    ai_grade = "moderate"
    head_volume_mm3 = 10000.0
    necrosis_volume_mm3 = 2000.0
    proportion = 0.2
    grade = "moderate"


class GradeRevisionFactory(DjangoModelFactory):
    class Meta:
        model = models.GradeRevision

    hip_result = factory.SubFactory(HipResultFactory)
    grade = "severe"
    reason = "second look"
    author = factory.SubFactory(UserFactory)
