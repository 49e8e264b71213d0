"""Teaching cases come only from the collection's own site, where the teacher holds a
non-student role (issue 13 item 5): a study the teacher sees as a consultant, through a
share or as a student elsewhere cannot be copied (the copy would outlive the access)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from grading.models import AuditEvent, Membership, StudyShare
from grading.services.ingest import upload_ingest
from grading.teaching import services
from grading.teaching.models import Case
from tests.grading_tests.apis.conftest import store_truth_analysis, uploaded
from tests.grading_tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _foreign_study(classroom, tmp_path):
    from tests.grading_tests.apis.conftest import write_phantom_dicom

    phantom = write_phantom_dicom(tmp_path, seed=12, n_slices=3)
    report = upload_ingest(
        user=classroom.users["south_teacher"],
        site=classroom.other_site,
        files=uploaded(phantom.paths),
        client_address=None,
    )
    study = report.studies[0]
    store_truth_analysis(series=study.series.get(), labels=phantom.labels)
    return study


@pytest.mark.parametrize("access", ["student_there", "share", "consultant_role"])
def test_a_study_of_another_site_cannot_become_a_case(classroom, tmp_path, access) -> None:
    teacher = classroom.users["teacher"]
    study = _foreign_study(classroom, tmp_path)
    if access == "student_there":
        MembershipFactory(user=teacher, site=classroom.other_site, role="student")
    elif access == "share":
        StudyShare.objects.create(study=study, user=teacher, shared_by=None)
    else:
        MembershipFactory(user=teacher, site=classroom.other_site, role="clinician")
    from grading.selectors import study_get_visible

    assert study_get_visible(user=teacher, study_id=study.pk) == study  # the teacher sees it
    with pytest.raises(PermissionDenied):
        services.case_add(user=teacher, collection=classroom.collection, study_id=study.pk)
    assert not Case.objects.filter(source_study=study).exists()
    answer = classroom.client("teacher").post(
        f"/api/teaching/collections/{classroom.collection.pk}/cases/",
        {"study_id": study.pk},
        format="json",
    )
    assert answer.status_code == 403


def test_a_teacher_who_is_now_a_student_of_the_site_cannot_add_cases(classroom) -> None:
    teacher = classroom.users["teacher"]
    Membership.objects.filter(user=teacher, site=classroom.site).update(role="student")
    with pytest.raises(PermissionDenied):
        services.case_add(
            user=teacher, collection=classroom.other_collection, study_id=classroom.study.pk
        )
    assert AuditEvent.objects.filter(action="teaching.case_copy").count() == 1  # the fixture's
