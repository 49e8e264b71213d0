"""Pages: ask for a second opinion, the consultant's list and answer form, the
requester's view of the answers beside their own grade."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from grading.consults.apis import requester_hips
from grading.consults.models import ACTIVE_STATUSES
from grading.consults.selectors import (
    consultant_requests_active,
    request_answers,
    request_get_visible,
    requests_visible_to,
    user_is_consultant_of,
    user_is_requesting_side_of,
)
from grading.consults.services import (
    DEFAULT_DAYS,
    MAX_DAYS,
    consultant_site_get,
    consultant_user_get,
    second_opinion_answer_create,
    second_opinion_request_close,
    second_opinion_request_create,
    second_opinion_request_view_record,
    second_opinion_requests_expire,
)
from grading.form_errors import validation_text
from grading.models import GradeChoice, Site
from grading.selectors import study_get_visible, user_can_grade


def _address(request: HttpRequest) -> str | None:
    from grading.apis.common import client_address

    return client_address(request)  # type: ignore[arg-type]


@login_required
@require_GET
def consult_list(request: HttpRequest) -> HttpResponse:
    second_opinion_requests_expire()
    active = consultant_requests_active(user=request.user)
    return render(
        request,
        "consults/list.html",
        {
            "asked_of_me": requests_visible_to(user=request.user).filter(
                pk__in=active.values("pk")
            ),
            "asked_by_us": requests_visible_to(user=request.user).exclude(
                pk__in=active.values("pk")
            )[:100],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def consult_new(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_get_visible(user=request.user, study_id=study_id)
    if not user_can_grade(user=request.user, study=study):
        raise PermissionDenied("Your role may not ask for a second opinion on this study.")
    if request.method == "POST":
        try:
            username = request.POST.get("consultant", "").strip()
            site_code = request.POST.get("consultant_site", "").strip()
            consult = second_opinion_request_create(
                user=request.user,
                study=study,
                question=request.POST.get("question", ""),
                consultant=consultant_user_get(username=username) if username else None,
                consultant_site=consultant_site_get(code=site_code) if site_code else None,
                days=int(request.POST.get("days") or DEFAULT_DAYS),
                client_address=_address(request),
            )
        except (ValidationError, ValueError) as exc:
            messages.error(
                request,
                validation_text(exc) if isinstance(exc, ValidationError) else str(exc),
            )
        else:
            return redirect("consults:detail", request_id=consult.pk)
    return render(
        request,
        "consults/new.html",
        {
            "study": study,
            "sites": Site.objects.order_by("name"),
            "default_days": DEFAULT_DAYS,
            "max_days": MAX_DAYS,
        },
    )


@login_required
@require_GET
def consult_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    second_opinion_requests_expire()
    consult = request_get_visible(user=request.user, request_id=request_id)
    second_opinion_request_view_record(
        user=request.user, consult=consult, client_address=_address(request)
    )
    hips = requester_hips(study_id=consult.study_id)
    answers = list(request_answers(consult=consult))
    for hip in hips:
        hip["answers"] = [
            {"author": a.author.get_username(), "grade": h["grade"]}
            for a in answers
            for h in a.hips
            if h["series_instance_uid"] == hip["series_instance_uid"] and h["side"] == hip["side"]
        ]
    return render(
        request,
        "consults/detail.html",
        {
            "consult": consult,
            "hips": hips,
            "answers": answers,
            "grades": GradeChoice.choices,
            "is_consultant": user_is_consultant_of(user=request.user, consult=consult),
            "may_close": consult.status in ACTIVE_STATUSES
            and user_is_requesting_side_of(user=request.user, consult=consult),
        },
    )


@login_required
@require_POST
def consult_answer(request: HttpRequest, request_id: int) -> HttpResponse:
    consult = request_get_visible(user=request.user, request_id=request_id)
    hips = []
    for hip in requester_hips(study_id=consult.study_id):
        grade = request.POST.get(f"grade-{hip['series_instance_uid']}-{hip['side']}", "")
        if grade:
            hips.append(
                {
                    "series_instance_uid": hip["series_instance_uid"],
                    "side": hip["side"],
                    "grade": grade,
                }
            )
    try:
        second_opinion_answer_create(
            user=request.user,
            consult=consult,
            hips=hips,
            comment=request.POST.get("comment", ""),
            client_address=_address(request),
        )
    except ValidationError as exc:
        messages.error(request, validation_text(exc))
    else:
        messages.success(request, "Answer sent.")
    return redirect("consults:detail", request_id=consult.pk)


@login_required
@require_POST
def consult_close(request: HttpRequest, request_id: int) -> HttpResponse:
    consult = request_get_visible(user=request.user, request_id=request_id)
    try:
        second_opinion_request_close(
            user=request.user, consult=consult, client_address=_address(request)
        )
    except ValidationError as exc:
        messages.error(request, validation_text(exc))
    return redirect("consults:detail", request_id=consult.pk)
