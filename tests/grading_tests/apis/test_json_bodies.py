"""JSON request bodies are bounded in size and nesting (``BoundedJSONParser``).

Found by probing the running portal (docs/operations.md, "Probes of the running
portal"): a few kilobytes of ``[[[[`` made every JSON endpoint answer 500, a signed-in
user's and an anonymous one's alike, and a JSON body was accepted up to the 2 GiB
upload limit, held in memory whole.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from grading.models import GradeRevision
from tests.grading_tests.apis.conftest import grade_body

pytestmark = pytest.mark.django_db

NESTED = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_a_400_and_changes_no_grade(world):
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/grades/", NESTED, content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"detail": "JSON parse error - nested too deeply"}
    assert not GradeRevision.objects.exists()


def test_deeply_nested_json_from_an_anonymous_caller_is_a_400():
    answer = APIClient().post("/api/auth/token/", NESTED, content_type="application/json")
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["detail"]


def test_json_body_over_the_limit_is_a_413_with_the_limit(world, settings):
    settings.ONFH_MAX_JSON_BODY_BYTES = 1000
    body = json.dumps(grade_body(world, reason="x" * 2000))
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/grades/", body, content_type="application/json"
    )
    assert answer.status_code == 413
    assert "over the limit of 1000 bytes" in answer.json()["detail"]
    assert not GradeRevision.objects.exists()


def test_json_body_within_the_limit_still_changes_the_grade(world, settings):
    settings.ONFH_MAX_JSON_BODY_BYTES = 1000
    answer = world.client("clinician").post(
        f"/api/studies/{world.study.pk}/grades/", grade_body(world), format="json"
    )
    assert answer.status_code == 201, answer.json()
    assert GradeRevision.objects.get().grade == "severe"
