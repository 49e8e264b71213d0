"""Teaching pages (Django templates in ``templates/teaching/``). Thin: selectors to read,
services to write, plain HTML forms. The case and attempt pages run the study page's
Cornerstone3D viewer (``viewer/frontend/src/teaching.ts``) on the case's de-identified
DICOM copies from ``/api/teaching/images/...``; a student marks necrosis with its brush,
sent with the answer form as PNGs. The page config carries a reference URL only where the
answer is revealed, so nothing of the answer reaches a student's page before an attempt."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from grading.form_errors import validation_text
from grading.teaching import selectors, services
from grading.teaching.apis.serializers import image_data
from grading.teaching.scoring import GRADES

GRADE_LABELS = {
    "none": "None (< 0.1 %)",
    "mild": "Mild (< 15 %)",
    "moderate": "Moderate (15-30 %)",
    "severe": "Severe (> 30 %)",
}


def _errors(exc: ValidationError) -> str:
    return validation_text(exc)


def _client_address(request: HttpRequest) -> str | None:
    from grading.apis.common import client_address

    return client_address(request)  # type: ignore[arg-type]  # reads only request.META


@login_required
@require_http_methods(["GET", "POST"])
def collection_list(request: HttpRequest) -> HttpResponse:
    sites = list(selectors.teaching_sites(user=request.user))
    if request.method == "POST":
        site = next((s for s in sites if str(s.pk) == request.POST.get("site")), None)
        if site is None:
            raise PermissionDenied("Only a teacher of the site may start a collection there.")
        try:
            collection = services.collection_create(
                user=request.user,
                site=site,
                title=request.POST.get("title", ""),
                description=request.POST.get("description", ""),
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            return redirect("teaching:collection", collection_id=collection.pk)
    rows = []
    for collection in selectors.collections_visible_to(user=request.user).order_by(
        "-created", "-id"
    ):
        teaches = selectors.user_teaches(user=request.user, collection=collection)
        rows.append(
            {
                "collection": collection,
                "teaches": teaches,
                "case_count": collection.cases.count(),
                "progress": None
                if teaches
                else selectors.student_progress(user=request.user, collection=collection),
            }
        )
    return render(request, "teaching/collection_list.html", {"rows": rows, "teaching_sites": sites})


@login_required
@require_http_methods(["GET", "POST"])
def collection_page(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = selectors.collection_get_visible(user=request.user, collection_id=collection_id)
    teaches = selectors.user_teaches(user=request.user, collection=collection)
    if request.method == "POST":
        if not teaches:
            raise PermissionDenied("Only the collection's teacher may change it.")
        action = request.POST.get("action")
        try:
            if action == "add_case":
                case = services.case_add(
                    user=request.user,
                    collection=collection,
                    study_id=int(request.POST.get("study") or 0),
                    client_address=_client_address(request),
                )
                messages.success(request, f"{case.pseudonym} added.")
            elif action == "enrol":
                ids = [int(v) for v in request.POST.getlist("students") if v.isdigit()]
                users = list(get_user_model().objects.filter(pk__in=ids))
                if users:
                    count = services.collection_enrol(
                        user=request.user, collection=collection, students=users
                    )
                    messages.success(request, f"{count} student(s) enrolled.")
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        return redirect("teaching:collection", collection_id=collection.pk)
    cases = []
    for case in collection.cases.order_by("number"):
        attempts = selectors.attempts_of(user=request.user, case=case)
        cases.append(
            {"case": case, "attempts": attempts, "latest": attempts[-1] if attempts else None}
        )
    context: dict[str, Any] = {
        "collection": collection,
        "teaches": teaches,
        "cases": cases,
        "progress": None
        if teaches
        else selectors.student_progress(user=request.user, collection=collection),
    }
    if teaches:
        used = set(collection.cases.values_list("source_study_id", flat=True))
        context["studies"] = [
            s for s in selectors.studies_for_cases(user=request.user)[:200] if s.pk not in used
        ]
        context["enrollable"] = selectors.enrollable_users(collection=collection)
        context["students"] = [e.student for e in collection.enrolments.select_related("student")]
    return render(request, "teaching/collection.html", context)


def _masks_from_post(request: HttpRequest, images: dict[int, Any]) -> dict[int, Any]:
    raw = request.POST.get("masks_json") or "[]"
    try:
        items = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the stack
        raise ValidationError("The marked necrosis could not be read.") from exc
    if not isinstance(items, list):
        raise ValidationError("The marked necrosis could not be read.")
    masks = {}
    for item in items:
        try:
            image_id = int(item["image_id"])
            png = base64.b64decode(str(item["png_base64"]).split(",")[-1], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ValidationError("The marked necrosis could not be read.") from exc
        row = images.get(image_id)
        if row is None:
            raise ValidationError("A mask for an image of another case.")
        masks[image_id] = services.mask_from_png(png, shape=(row.rows, row.columns))
    return masks


def _viewer_image(row: Any, *, revealed: bool, mask_url: str | None = None) -> dict[str, Any]:
    """One slice as the viewer loads it: the de-identified DICOM copy, the reference label
    map's URL only when ``revealed``, the attempt's marking where there is one."""
    return {**image_data(row, revealed=revealed), "mask_url": mask_url}


def _overlay_views(mode: str, images: list[dict[str, Any]]) -> list[str]:
    """The overlays the page offers (the same rule as ``overlayViews`` in
    ``viewer/frontend/src/teaching-logic.ts``, which draws them)."""
    has_reference = any(image["reference_url"] for image in images)
    if mode == "answer":
        return ["marking"]
    if mode == "view":
        return ["reference"] if has_reference else []
    return ["reference", "marking", "compare"] if has_reference else ["marking"]


@login_required
@require_http_methods(["GET", "POST"])
def case_page(request: HttpRequest, case_id: int) -> HttpResponse:
    case = selectors.case_get_visible(user=request.user, case_id=case_id)
    teaches = selectors.user_teaches(user=request.user, collection=case.collection)
    enrolled = selectors.user_enrolled(user=request.user, collection=case.collection)
    rows = selectors.case_instances(case=case)
    if request.method == "POST":
        grades = {
            side: request.POST[f"grade_{side}"]
            for side in case.sides
            if request.POST.get(f"grade_{side}")
        }
        jic_types = {
            side: request.POST[f"jic_{side}"]
            for side in case.sides
            if request.POST.get(f"jic_{side}")
        }
        try:
            masks = _masks_from_post(request, {row.pk: row for row in rows})
            attempt = services.attempt_submit(
                user=request.user,
                case=case,
                grades=grades,
                jic_types=jic_types,
                masks=masks,
                client_address=_client_address(request),
            )
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            return redirect("teaching:attempt", attempt_id=attempt.pk)
    attempts = selectors.attempts_of(user=request.user, case=case)
    # Answering, the page shows the student's own marking only, even on a retake; the
    # teacher's view shows the reference.
    revealed = not enrolled and selectors.answer_revealed(user=request.user, case=case)
    images = [_viewer_image(row, revealed=revealed) for row in rows]
    mode = "answer" if enrolled else "view"
    return render(
        request,
        "teaching/case.html",
        {
            "case": case,
            "teaches": teaches,
            "enrolled": enrolled,
            "attempts": attempts,
            "grades": [(g, GRADE_LABELS[g]) for g in GRADES],
            "jic_sides": [h["side"] for h in case.reference_hips if h.get("jic_type")],
            "jic_types": ["A", "B", "C1", "C2"],
            "viewer_config": {"mode": mode, "images": images},
            "overlay_views": _overlay_views(mode, images),
        },
    )


@login_required
@require_GET
def attempt_page(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = selectors.attempt_get_visible(user=request.user, attempt_id=attempt_id)
    case = attempt.case
    rows = selectors.case_instances(case=case)
    marked = set(attempt.masks.values_list("case_instance_id", flat=True))
    images = [
        _viewer_image(
            row,
            revealed=True,
            mask_url=(
                reverse("teaching-api:attempt-mask", args=[attempt.pk, row.pk])
                if row.pk in marked
                else None
            ),
        )
        for row in rows
    ]
    return render(
        request,
        "teaching/attempt.html",
        {
            "attempt": attempt,
            "case": case,
            "all_attempts": selectors.attempts_of(user=attempt.student, case=case),
            "viewer_config": {"images": images, "mode": "result"},
            "overlay_views": _overlay_views("result", images),
        },
    )


@login_required
@require_GET
def results_page(request: HttpRequest, collection_id: int) -> HttpResponse:
    collection = selectors.collection_get_taught(user=request.user, collection_id=collection_id)
    results = selectors.collection_results(collection=collection)
    confusion = [
        {"reference": grade, "counts": results["confusion"][k]} for k, grade in enumerate(GRADES)
    ]
    return render(
        request,
        "teaching/results.html",
        {"collection": collection, "results": results, "confusion": confusion, "grades": GRADES},
    )
