"""Thin page views: they check who may see what (through grading.selectors) and render a
template; the pages talk to the REST API and the WebSocket for everything else."""

from __future__ import annotations

import mimetypes
import posixpath

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from grading.interop.selectors import pacs_nodes_visible_to
from grading.models import UPLOAD_ROLES
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
        {"study": found, "viewer_config": config, "pacs_config": pacs_config},
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
