"""Thin page views: they check who may see what (through grading.selectors) and render a
template; the pages talk to the REST API and the WebSocket for everything else."""

from __future__ import annotations

import mimetypes
import posixpath
import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from grading.interop.selectors import pacs_nodes_visible_to
from grading.models import UPLOAD_ROLES
from grading.permissions import redaction_for
from grading.selectors import memberships_of, study_get_visible

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")


@login_required
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    sites = [m.site for m in memberships_of(user=request.user)]
    return render(request, "viewer/worklist.html", {"sites": sites})


@login_required
@require_GET
def upload(request: HttpRequest) -> HttpResponse:
    memberships = [m for m in memberships_of(user=request.user) if m.role in UPLOAD_ROLES]
    return render(
        request,
        "viewer/upload.html",
        {"upload_sites": [m.site for m in memberships], "may_upload": bool(memberships)},
    )


@login_required
@require_GET
def study(request: HttpRequest, study_id: int) -> HttpResponse:
    found = study_get_visible(user=request.user, study_id=study_id)
    config = {"studyId": found.pk, "username": request.user.get_username()}
    # A student's page carries no identifier, not even before the API answer replaces it.
    hidden = redaction_for(user=request.user).hides_patient_of(found.site_id)
    patient = (
        {"name": "", "id": ""} if hidden else {"name": found.patient_name, "id": found.patient_id}
    )
    # The PACS panel: the study's site's nodes this user may use (none for a student).
    nodes = pacs_nodes_visible_to(user=request.user).filter(site_id=found.site_id)
    pacs_config = (
        {"studyId": found.pk, "nodes": [{"id": n.pk, "name": n.name} for n in nodes]}
        if nodes
        else None
    )
    return render(
        request,
        "viewer/study.html",
        {
            "study": found,
            "patient": patient,
            "viewer_config": config,
            "pacs_config": pacs_config,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """Your API tokens: make one (its key shown on this answer only), revoke one."""
    from grading.apis.common import client_address
    from grading.models import ApiToken
    from grading.selectors import api_tokens_of
    from grading.services.tokens import api_token_create, api_token_revoke, api_token_state

    new_key = ""
    error = ""
    if request.method == "POST":
        address = client_address(request)  # type: ignore[arg-type]
        if "revoke" in request.POST:
            try:
                api_token_revoke(
                    user=request.user,
                    token_id=int(request.POST["revoke"]),
                    client_address=address,
                )
            except (ApiToken.DoesNotExist, ValueError):
                raise Http404("No such token.") from None
        else:
            name = request.POST.get("name", "").strip()
            if name:
                _, new_key = api_token_create(user=request.user, name=name, client_address=address)
            else:
                error = "Name: give the token a name (what will use it)."
    rows = [(t, api_token_state(token=t)) for t in api_tokens_of(user=request.user)]
    return render(
        request,
        "viewer/tokens.html",
        {
            "rows": rows,
            "new_key": new_key,
            "error": error,
            "ttl_days": settings.ONFH_API_TOKEN_TTL_DAYS,
        },
        status=400 if error else 200,
    )


@require_GET
def static_file(request: HttpRequest, path: str) -> FileResponse:
    """Serve /static/ from the portal itself (embedded mode: no CDN, no separate web server).

    Vite's hashed assets are immutable and cached for a year; the rest revalidates.
    """
    normalized = posixpath.normpath(path).lstrip("/")
    if normalized.startswith("..") or normalized != path.lstrip("/"):
        raise Http404("No such file.")
    found = finders.find(normalized)
    if not found or isinstance(found, list):
        raise Http404("No such file.")
    content_type, encoding = mimetypes.guess_type(str(found))
    response = FileResponse(
        open(found, "rb"),  # noqa: SIM115 - FileResponse closes it
        content_type=content_type or "application/octet-stream",
    )
    if encoding:
        response.headers["Content-Encoding"] = encoding
    if normalized.startswith("viewer/assets/"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


# --- the guide (docs/) ------------------------------------------------------------------------

DOCS_DIR = settings.BASE_DIR / "docs"
_DOC_IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}


@require_GET
def guide(request: HttpRequest, name: str = "guide") -> HttpResponse:
    """docs/guide.md (or another page of docs/) as HTML, for everyone: the sign-in page
    links to it too. Only files of docs/ itself, by a plain name."""
    from viewer.guide import render_markdown

    path = DOCS_DIR / f"{name}.md"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or not path.is_file():
        raise Http404("No such page of the guide.")
    page = render_markdown(path.read_text(encoding="utf-8"))
    return render(request, "guide.html", {"guide": page, "doc_name": name})


@require_GET
def guide_image(request: HttpRequest, path: str) -> FileResponse:
    """The guide's pictures (docs/screenshots/..., the contact sheets)."""
    normalized = posixpath.normpath(path).lstrip("/")
    suffix = posixpath.splitext(normalized)[1].lower()
    if normalized.startswith("..") or normalized != path or suffix not in _DOC_IMAGE_TYPES:
        raise Http404("No such picture.")
    found = (DOCS_DIR / normalized).resolve()
    if not found.is_file() or DOCS_DIR.resolve() not in found.parents:
        raise Http404("No such picture.")
    response = FileResponse(open(found, "rb"), content_type=_DOC_IMAGE_TYPES[suffix])  # noqa: SIM115
    response.headers["Cache-Control"] = "no-cache"
    return response
