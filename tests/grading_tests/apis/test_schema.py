"""The OpenAPI schema is valid, complete and warning-free; the docs pages load offline."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

# The contract of docs/architecture.md, as OpenAPI paths and methods.
CONTRACT = {
    "/api/auth/token/": {"post"},
    "/api/me/": {"get"},
    "/api/sites/{site_id}/sign-in/": {"get", "put"},
    "/api/uploads/": {"post"},
    "/api/auth/tokens/": {"get", "post"},
    "/api/auth/tokens/{token_id}/": {"delete"},
    "/api/workers/": {"get"},
    "/api/studies/": {"get"},
    "/api/studies/{study_id}/": {"get"},
    "/api/studies/{study_id}/grades/": {"post"},
    "/api/studies/{study_id}/classifications/": {"post"},
    "/api/studies/{study_id}/audit/": {"get"},
    "/api/instances/{instance_id}/dicom/": {"get"},
    "/api/instances/{instance_id}/labelmap.png": {"get"},
    "/api/series/{series_id}/labelmaps/": {"post"},
    "/api/series/{series_id}/labelmaps/revert/": {"post"},
    # Teaching collections (grading.teaching).
    "/api/teaching/collections/": {"get", "post"},
    "/api/teaching/collections/{collection_id}/": {"get"},
    "/api/teaching/collections/{collection_id}/students/": {"post"},
    "/api/teaching/collections/{collection_id}/cases/": {"post"},
    "/api/teaching/collections/{collection_id}/results/": {"get"},
    "/api/teaching/cases/{case_id}/": {"get"},
    "/api/teaching/cases/{case_id}/attempts/": {"get", "post"},
    "/api/teaching/images/{image_id}/dicom/": {"get"},
    "/api/teaching/images/{image_id}/image.png": {"get"},
    "/api/teaching/images/{image_id}/reference.png": {"get"},
    "/api/teaching/attempts/{attempt_id}/images/{image_id}/mask.png": {"get"},
    # Second opinions (grading.consults) and patient explanations (grading.explanations).
    "/api/consults/": {"get", "post"},
    "/api/consults/{request_id}/": {"get"},
    "/api/consults/{request_id}/answers/": {"post"},
    "/api/consults/{request_id}/close/": {"post"},
    "/api/explanations/": {"post"},
    "/api/explanations/{explanation_id}/": {"get"},
    "/api/explanations/{explanation_id}/pdf/": {"get"},
    "/api/explanations/{explanation_id}/links/": {"post"},
    "/api/explanations/links/{link_id}/revoke/": {"post"},
    "/api/series/{series_id}/export/seg/": {"get"},
    "/api/series/{series_id}/export/sr/": {"get"},
    "/api/sites/{site_id}/export/results.csv": {"get"},
    "/api/sites/{site_id}/export/results.json": {"get"},
    # DICOMweb (PS3.18): STOW-RS, QIDO-RS, WADO-RS.
    "/api/dicomweb/studies": {"get", "post"},
    "/api/dicomweb/studies/{study_uid}/series": {"get"},
    "/api/dicomweb/studies/{study_uid}/series/{series_uid}": {"get"},
    "/api/dicomweb/studies/{study_uid}/series/{series_uid}/metadata": {"get"},
    "/api/pacs/nodes/": {"get", "post"},
    "/api/pacs/nodes/{node_id}/studies/": {"get"},
    "/api/pacs/nodes/{node_id}/retrieve/": {"post"},
    "/api/series/{series_id}/send/": {"post"},
    "/api/series/{series_id}/sends/": {"get"},
    "/api/dicomweb/series": {"get"},
    "/api/dicomweb/instances": {"get"},
    "/api/dicomweb/studies/{study_uid}": {"get"},
    "/api/dicomweb/studies/{study_uid}/metadata": {"get"},
    "/api/dicomweb/studies/{study_uid}/instances": {"get"},
    "/api/dicomweb/studies/{study_uid}/series/{series_uid}/instances": {"get"},
    "/api/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}": {"get"},
    "/api/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata": {"get"},
    "/api/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frames}": {
        "get"
    },
}


@pytest.fixture(scope="module")
def schema() -> dict:
    GENERATOR_STATS.reset()
    generated = SchemaGenerator().get_schema(request=None, public=True)
    warnings = dict(GENERATOR_STATS._warn_cache)
    errors = dict(GENERATOR_STATS._error_cache)
    assert not errors, errors
    assert not warnings, warnings
    return generated


def test_schema_validates_against_the_openapi_spec(schema):
    validate_schema(schema)


def test_spectacular_command_validates_and_fails_on_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert set(CONTRACT) <= set(yaml.safe_load(out.read_text())["paths"])


def test_every_contract_path_is_documented(schema):
    paths = {
        path: {m for m in ops if m in {"get", "post", "put", "patch", "delete"}}
        for path, ops in schema["paths"].items()
    }
    for path, methods in CONTRACT.items():
        assert path in paths, path
        assert paths[path] == methods, path
    assert set(paths) == set(CONTRACT)  # nothing undocumented, nothing extra


def test_every_operation_has_typed_responses(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            success = [code for code in op["responses"] if code.startswith("2")]
            assert success, (path, method)
            for code in success:
                answer = op["responses"][code]
                assert "content" in answer, (path, method, code)
            if path != "/api/auth/token/":
                assert "401" in op["responses"], (path, method)


def test_request_bodies_and_shapes(schema):
    components = schema["components"]["schemas"]
    grade = components["GradeRevisionCreateRequest"]
    assert set(grade["required"]) == {"series_instance_uid", "side", "grade", "reason"}
    upload = schema["paths"]["/api/uploads/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert set(components["UploadResult"]["properties"]) >= {"studies", "accepted", "rejected"}
    detail = set(components["StudyDetail"]["properties"])
    assert {"progress", "error", "series", "hips", "slices"} <= detail
    assert components["Grade"]["enum"] == ["none", "mild", "moderate", "severe"]
    dicom = schema["paths"]["/api/instances/{instance_id}/dicom/"]["get"]["responses"]["200"]
    assert "application/dicom" in dicom["content"]
    png = schema["paths"]["/api/instances/{instance_id}/labelmap.png"]["get"]["responses"]["200"]
    assert "image/png" in png["content"]
    listing = schema["paths"]["/api/studies/"]["get"]
    params = {p["name"] for p in listing["parameters"]}
    assert {
        "status",
        "grade",
        "site",
        "date_from",
        "date_to",
        "search",
        "ordering",
        "page",
    } <= params


@pytest.mark.django_db
def test_schema_endpoint_is_public():
    answer = APIClient().get("/api/schema/")
    assert answer.status_code == 200
    assert "openapi" in yaml.safe_load(answer.content)
    as_json = APIClient().get("/api/schema/?format=json")
    assert as_json.status_code == 200
    assert as_json.json()["info"]["title"]


@pytest.mark.django_db
def test_docs_page_loads_nothing_from_a_cdn():
    answer = APIClient().get("/api/docs/")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "/api/schema/" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "a CDN reference"
    assets = re.findall(r"""(?:src|href)=["'](/static/[^"']+)["']""", html)
    assert any("drf_spectacular_sidecar" in a for a in assets)
    for asset in assets:
        path = asset.removeprefix("/static/")
        assert finders.find(path), f"{asset} is not among the static files"
