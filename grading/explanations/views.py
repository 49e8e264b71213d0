"""Pages: the doctor's explanation editor (login) and the public patient page behind a
share link (no login; 404 for an unknown token, 410 once expired or revoked)."""

from __future__ import annotations

import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from grading.explanations.selectors import (
    LinkGone,
    explanation_get_visible,
    explanation_page_html,
    explanations_visible_to,
    link_get_by_token,
    link_get_visible,
    share_link_url,
)
from grading.explanations.services import (
    NOTE_MAX_CHARS,
    patient_explanation_create,
    patient_explanation_pdf,
    share_link_create,
    share_link_revoke,
    share_link_view_record,
)
from grading.form_errors import validation_text
from grading.selectors import study_detail_get, user_can_grade


def _address(request: HttpRequest) -> str | None:
    from grading.apis.common import client_address

    return client_address(request)  # type: ignore[arg-type]


def _too_many(request: HttpRequest) -> HttpResponse | None:
    """429 past ``ONFH_PATIENT_LINK_RATE`` views of patient links from one address (any
    token, known or not: guessing tokens is limited too); nothing is audited then."""
    from django.conf import settings
    from django_ratelimit.core import is_ratelimited

    limited = is_ratelimited(
        request,
        group="patient-link",
        key=lambda _group, req: _address(req) or "unknown",
        rate=settings.ONFH_PATIENT_LINK_RATE,
        increment=True,
    )
    if not limited:
        return None
    response = HttpResponse(
        "Too many requests for patient pages from your address. Try again in a minute.",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = "60"
    return response


def _gone(request: HttpRequest, gone: LinkGone, what: str) -> HttpResponse:
    share_link_view_record(
        link=gone.link, what=what, outcome=gone.why, client_address=_address(request)
    )
    return render(request, "explanations/gone.html", {"why": gone.why}, status=410)


def _public_headers(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# The token is the only credential (no session, no cookie to ride on): CSRF does not apply.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def public_page(request: HttpRequest) -> HttpResponse:
    """GET: a small page that reads the token from the fragment and POSTs it back here.
    POST ``token``: the patient page."""
    if request.method == "GET":
        return _public_headers(render(request, "explanations/open.html"))
    if refused := _too_many(request):
        return refused
    token = request.POST.get("token", "")
    try:
        link = link_get_by_token(token=token)
    except LinkGone as gone:
        return _gone(request, gone, "page")
    explanation = link.explanation
    share_link_view_record(link=link, what="page", client_address=_address(request))
    with explanation.image.open("rb") as handle:
        image_src = "data:image/png;base64," + base64.b64encode(handle.read()).decode()
    html = explanation_page_html(
        explanation=explanation,
        extra={
            "image_src": image_src,
            "pdf_action": reverse("explanations:public-pdf"),
            "pdf_token": token,
            "csp_nonce": getattr(request, "csp_nonce", ""),
        },
    )
    return _public_headers(HttpResponse(html))


@csrf_exempt
@never_cache
@require_POST
def public_pdf(request: HttpRequest) -> HttpResponse:
    """POST ``token``: the patient page as a PDF."""
    if refused := _too_many(request):
        return refused
    try:
        link = link_get_by_token(token=request.POST.get("token", ""))
    except LinkGone as gone:
        return _gone(request, gone, "pdf")
    share_link_view_record(link=link, what="pdf", client_address=_address(request))
    response = HttpResponse(
        patient_explanation_pdf(explanation=link.explanation), content_type="application/pdf"
    )
    response["Content-Disposition"] = content_disposition_header(False, "hip-mri-explained.pdf")
    return _public_headers(response)


@login_required
@require_http_methods(["GET", "POST"])
def study_explanations(request: HttpRequest, study_id: int) -> HttpResponse:
    """The editor: make an explanation, see the study's explanations and their links."""
    study = study_detail_get(user=request.user, study_id=study_id)
    if not user_can_grade(user=request.user, study=study):
        raise PermissionDenied("Your role may not explain this study to a patient.")
    if request.method == "POST":
        try:
            explanation = patient_explanation_create(
                user=request.user,
                study=study,
                note=request.POST.get("note", ""),
                side=request.POST.get("side") or None,
                series_instance_uid=request.POST.get("series_instance_uid") or None,
                client_address=_address(request),
            )
        except ValidationError as exc:
            messages.error(request, validation_text(exc))
        else:
            messages.success(request, "Explanation made. Share it with a link below.")
            return redirect(
                f"{reverse('explanations:study', args=[study.pk])}#explanation-{explanation.pk}"
            )
    explanations = list(
        explanations_visible_to(user=request.user).filter(study=study).prefetch_related("links")
    )
    return render(
        request,
        "explanations/editor.html",
        {
            "study": study,
            "hips": study.hip_list,
            "explanations": explanations,
            "note_max": NOTE_MAX_CHARS,
            "new_link": request.session.pop("explanation_new_link", None),
        },
    )


@login_required
@require_POST
def link_create(request: HttpRequest, explanation_id: int) -> HttpResponse:
    explanation = explanation_get_visible(user=request.user, explanation_id=explanation_id)
    try:
        days = int(request.POST.get("days") or 30)
        link, token = share_link_create(
            user=request.user, explanation=explanation, days=days, client_address=_address(request)
        )
    except ValidationError as exc:
        messages.error(request, validation_text(exc, {"days": "Link valid for (days)"}))
    except ValueError:
        messages.error(request, "Link valid for (days): give a whole number of days.")
    else:
        request.session["explanation_new_link"] = {
            "link_id": link.pk,
            "url": share_link_url(request=request, token=token),
        }
    return redirect(
        f"{reverse('explanations:study', args=[explanation.study_id])}#explanation-{explanation.pk}"
    )


@login_required
@require_POST
def link_revoke(request: HttpRequest, link_id: int) -> HttpResponse:
    link = link_get_visible(user=request.user, link_id=link_id)
    share_link_revoke(user=request.user, link=link, client_address=_address(request))
    messages.success(request, "Link revoked: it now answers 410 Gone.")
    editor = reverse("explanations:study", args=[link.explanation.study_id])
    return redirect(f"{editor}#explanation-{link.explanation_id}")
