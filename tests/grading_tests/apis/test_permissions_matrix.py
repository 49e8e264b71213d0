"""Every endpoint for every role, a user of a foreign site and an anonymous client.

The matrix below is the permission rule of the API, written out; each cell is the exact
status the endpoint must answer. Rules it encodes:

- a user of another site gets 404 on every object endpoint (never 403: they must not
  learn that the study exists), and the study is absent from their list;
- anonymous gets 401 everywhere except the token endpoint, the schema and the docs;
- a student sees their site's studies but gets 403 on every write to a clinical grade,
  a mask or an upload; and no answer to a student carries a patient identifier;
- SEG and SR exports carry patient identifiers: 403 for a student; the site's research
  table only for its site admins, clinicians and radiologists (403 for teachers, students);
- the grading roles are those of ``grading.selectors.user_can_grade``
  (``grading.models.GRADING_ROLES``: clinician, radiologist, teacher, site admin).

Both token and session authentication are walked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.grading_tests.apis.conftest import (
    ROLES,
    World,
    assert_no_patient_identifiers,
    png_base64,
    uploaded,
)

pytestmark = pytest.mark.django_db

WHO = (*ROLES, "foreign", None)  # None: anonymous
COLUMNS = ("clinician", "radiologist", "teacher", "student", "site_admin", "foreign", "anonymous")


def row(*statuses: int) -> dict[str, int]:
    assert len(statuses) == len(COLUMNS)
    return dict(zip(COLUMNS, statuses, strict=True))


#                               clin radio teach stud admin foreign anon
MATRIX: dict[str, dict[str, int]] = {
    "auth_token":         row(200, 200, 200, 200, 200, 200, 400),
    "me":                 row(200, 200, 200, 200, 200, 200, 401),
    "workers":            row(200, 200, 200, 200, 200, 200, 401),
    "tokens_list":        row(200, 200, 200, 200, 200, 200, 401),
    "tokens_create":      row(201, 201, 201, 201, 201, 201, 401),
    "token_revoke_clin":  row(200, 404, 404, 404, 404, 404, 401),
    "upload":             row(201, 201, 201, 403, 201, 400, 401),
    "study_list":         row(200, 200, 200, 200, 200, 200, 401),
    "study_detail":       row(200, 200, 200, 200, 200, 404, 401),
    "grade_create":       row(201, 201, 201, 403, 201, 404, 401),
    "classification_create": row(201, 201, 201, 403, 201, 404, 401),
    "study_audit":        row(200, 200, 200, 200, 200, 404, 401),
    "instance_dicom":     row(200, 200, 200, 200, 200, 404, 401),
    "labelmap_current":   row(200, 200, 200, 200, 200, 404, 401),
    "labelmap_ai":        row(200, 200, 200, 200, 200, 404, 401),
    "labelmaps_save":     row(201, 201, 201, 403, 201, 404, 401),
    "labelmaps_revert":   row(200, 200, 200, 403, 200, 404, 401),
    "export_seg":         row(200, 200, 200, 403, 200, 404, 401),
    "export_sr":          row(200, 200, 200, 403, 200, 404, 401),
    "export_results_csv": row(200, 200, 403, 403, 200, 404, 401),
    "export_results_json": row(200, 200, 403, 403, 200, 404, 401),
    "schema":             row(200, 200, 200, 200, 200, 200, 200),
    "docs":               row(200, 200, 200, 200, 200, 200, 200),
}  # fmt: skip

Call = Callable[[World, Any, str | None], Any]


def _edited_item(world: World) -> dict[str, str]:
    instance = world.instances[0]
    labels = world.phantom.labels[instance.sop_instance_uid].copy()
    labels[(labels == 1) & (np.arange(labels.shape[1])[None, :] % 2 == 0)] = 2
    return {"sop_instance_uid": instance.sop_instance_uid, "png_base64": png_base64(labels)}


def _clinician_token(world: World) -> int:
    from grading.services.tokens import api_token_create

    return api_token_create(user=world.users["clinician"], name="clinician's script")[0].pk


CALLS: dict[str, Call] = {
    "auth_token": lambda w, c, who: c.post(
        "/api/auth/token/", {"username": who or "nobody", "password": "pw"}, format="json"
    ),
    "me": lambda w, c, who: c.get("/api/me/"),
    "workers": lambda w, c, who: c.get("/api/workers/"),
    "tokens_list": lambda w, c, who: c.get("/api/auth/tokens/"),
    "tokens_create": lambda w, c, who: c.post(
        "/api/auth/tokens/", {"name": "a script"}, format="json"
    ),
    # Only the owner revokes a token: everyone else gets 404 (the clinician's own token).
    "token_revoke_clin": lambda w, c, who: c.delete(f"/api/auth/tokens/{_clinician_token(w)}/"),
    "upload": lambda w, c, who: c.post(
        "/api/uploads/",
        {"files": uploaded(w.phantom.paths[:1]), "site": w.site.pk},
        format="multipart",
    ),
    "study_list": lambda w, c, who: c.get("/api/studies/"),
    "study_detail": lambda w, c, who: c.get(f"/api/studies/{w.study.pk}/"),
    "grade_create": lambda w, c, who: c.post(
        f"/api/studies/{w.study.pk}/grades/",
        {
            "series_instance_uid": w.series.series_instance_uid,
            "side": "left",
            "grade": "severe",
            "reason": f"{who} looked again",
        },
        format="json",
    ),
    "classification_create": lambda w, c, who: c.post(
        f"/api/studies/{w.study.pk}/classifications/",
        {
            "series_instance_uid": w.series.series_instance_uid,
            "side": "left",
            "jic_type": "B",
            "reason": f"{who} read the coronal T1",
        },
        format="json",
    ),
    "study_audit": lambda w, c, who: c.get(f"/api/studies/{w.study.pk}/audit/"),
    "instance_dicom": lambda w, c, who: c.get(f"/api/instances/{w.instances[0].pk}/dicom/"),
    "labelmap_current": lambda w, c, who: c.get(f"/api/instances/{w.instances[0].pk}/labelmap.png"),
    "labelmap_ai": lambda w, c, who: c.get(
        f"/api/instances/{w.instances[0].pk}/labelmap.png?version=ai"
    ),
    "labelmaps_save": lambda w, c, who: c.post(
        f"/api/series/{w.series.pk}/labelmaps/",
        {"reason": "edge of the necrosis", "labelmaps": [_edited_item(w)]},
        format="json",
    ),
    "labelmaps_revert": lambda w, c, who: c.post(
        f"/api/series/{w.series.pk}/labelmaps/revert/", {"reason": "AI was right"}, format="json"
    ),
    "export_seg": lambda w, c, who: c.get(f"/api/series/{w.series.pk}/export/seg/"),
    "export_sr": lambda w, c, who: c.get(f"/api/series/{w.series.pk}/export/sr/"),
    "export_results_csv": lambda w, c, who: c.get(f"/api/sites/{w.site.pk}/export/results.csv"),
    "export_results_json": lambda w, c, who: c.get(f"/api/sites/{w.site.pk}/export/results.json"),
    "schema": lambda w, c, who: c.get("/api/schema/"),
    "docs": lambda w, c, who: c.get("/api/docs/"),
}


def body_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_the_matrix_covers_every_endpoint():
    from django.urls import get_resolver

    # The core's own routes; apps included with include() (second opinions, patient
    # explanations) have their permission tests beside their code's tests.
    api_names = {
        p.name
        for p in get_resolver("grading.urls").url_patterns
        if getattr(p, "name", None) and p.name.startswith("api-")
    }
    assert len(api_names) == 21
    assert set(MATRIX) == set(CALLS)


@pytest.mark.parametrize("auth", ["token", "session"])
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_permission_matrix(world: World, endpoint: str, auth: str) -> None:
    got: dict[str, int] = {}
    for who in WHO:
        client = world.client(who, auth=auth)
        response = CALLS[endpoint](world, client, who)
        got[who or "anonymous"] = response.status_code
        content = body_of(response)
        if who == "student" and endpoint not in ("labelmap_current", "labelmap_ai"):
            # (A label map PNG holds 0/1/2 only; compressed bytes may spell anything.)
            assert_no_patient_identifiers(content, dicom=endpoint == "instance_dicom")
    assert got == MATRIX[endpoint], f"{endpoint} ({auth} auth)"


def test_foreign_user_lists_nothing_of_the_site(world: World) -> None:
    body = world.client("foreign").get("/api/studies/").json()
    assert body["count"] == 0
    assert world.study.study_instance_uid not in str(body)


def test_not_found_is_the_same_for_foreign_and_missing(world: World) -> None:
    """A foreign user cannot tell "exists elsewhere" from "does not exist"."""
    client = world.client("foreign")
    pairs = [
        (f"/api/studies/{world.study.pk}/", "/api/studies/999999/"),
        (f"/api/studies/{world.study.pk}/audit/", "/api/studies/999999/audit/"),
        (f"/api/instances/{world.instances[0].pk}/dicom/", "/api/instances/999999/dicom/"),
        (
            f"/api/instances/{world.instances[0].pk}/labelmap.png",
            "/api/instances/999999/labelmap.png",
        ),
    ]
    for existing, missing in pairs:
        a, b = client.get(existing), client.get(missing)
        assert a.status_code == b.status_code == 404
        assert a.json() == b.json()
        assert set(a.json()) == {"detail"}
