"""Writes of patient explanations: make one, make a share link, record a view of it,
revoke it; the PDF. Every step is an event on the study's audit trail (without any
patient identifier in it)."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from PIL import Image

from grading.dicom.uids import uid_problem
from grading.engine.rendering import femoral_head_crop
from grading.explanations.models import PatientExplanation, ShareLink
from grading.explanations.pdf import explanation_pdf
from grading.explanations.selectors import (
    explanation_context,
    explanation_sections,
    token_hash,
)
from grading.models import GRADE_RANK, HipResult, SliceResult, Study, StudyStatus
from grading.services.audit import audit_record, audit_record_once

NOTE_MAX_CHARS = 1200
LINK_DEFAULT_DAYS = 30
LINK_MAX_DAYS = 365


def _choose_hip(*, study: Study, side: str | None, series_instance_uid: str | None) -> HipResult:
    from grading.services.studies import latest_analyses

    if series_instance_uid and (problem := uid_problem(series_instance_uid)) is not None:
        raise ValidationError({"series_instance_uid": problem})
    analyses = [a for a in latest_analyses(study_id=study.pk).values() if a.status == "done"]
    hips = list(HipResult.objects.filter(analysis__in=analyses).select_related("analysis__series"))
    if series_instance_uid:
        hips = [h for h in hips if h.analysis.series.series_instance_uid == series_instance_uid]
    if side:
        hips = [h for h in hips if h.side == side]
    hips = [h for h in hips if h.grade]
    if not hips:
        raise ValidationError({"side": "This study has no graded hip to explain."})
    # The hip that matters most to the patient: the worst grade, then the larger share.
    return max(hips, key=lambda h: (GRADE_RANK.get(h.grade or "none", 0), h.proportion))


def _choose_slice(*, hip: HipResult) -> SliceResult:
    """The slice with the largest necrosis of this hip (else its largest head)."""
    best: tuple[float, float, int] | None = None
    chosen: SliceResult | None = None
    for row in SliceResult.objects.filter(analysis=hip.analysis).select_related("instance"):
        for h in row.hips:
            if h.get("side") != hip.side:
                continue
            key = (
                float(h.get("necrosis_area_mm2") or 0),
                float(h.get("head_area_mm2") or 0),
                -row.pk,
            )
            if best is None or key > best:
                best, chosen = key, row
    if chosen is None:
        raise ValidationError({"side": "No slice shows this hip."})
    return chosen


def _slice_image_png(*, slice_result: SliceResult, side: str) -> bytes:
    from grading.selectors import labelmap_for_instance
    from grading.services.engine import instance_read
    from grading.services.labelmaps import labelmap_read

    instance = slice_result.instance
    mr_slice = instance_read(instance)
    labelmap_row = labelmap_for_instance(instance=instance, version="current")
    labelmap = (
        labelmap_read(labelmap_row)
        if labelmap_row is not None
        else np.zeros(mr_slice.shape, dtype=np.uint8)
    )
    bbox = next(
        (tuple(h["bbox"]) for h in slice_result.hips if h.get("side") == side and h.get("bbox")),
        None,
    )
    rgb = femoral_head_crop(
        mr_slice.pixels,
        labelmap,
        bbox=bbox,  # type: ignore[arg-type]
        pixel_spacing_mm=mr_slice.pixel_spacing_mm,
    )
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def patient_explanation_create(
    *,
    user: Any,
    study: Study,
    note: str = "",
    side: str | None = None,
    series_instance_uid: str | None = None,
    client_address: str | None,
) -> PatientExplanation:
    """Make the patient's explanation of a graded study: the chosen hip (default the
    worst), its slice with the largest necrosis rendered from the stored DICOM and the
    current label map, its proportion and current grade, the doctor's note and name."""
    from grading.selectors import user_can_grade

    if not user_can_grade(user=user, study=study):
        raise PermissionDenied("You may not explain this study to a patient.")
    if study.status != StudyStatus.DONE:
        raise ValidationError({"study_id": "Only a graded study can be explained."})
    note = (note or "").strip()
    if len(note) > NOTE_MAX_CHARS:
        raise ValidationError({"note": f"At most {NOTE_MAX_CHARS} characters (one page)."})
    hip = _choose_hip(study=study, side=side, series_instance_uid=series_instance_uid)
    slice_result = _choose_slice(hip=hip)
    image = _slice_image_png(slice_result=slice_result, side=hip.side)
    from grading.services.classifications import hip_classifications

    classes = hip_classifications(hip=hip)
    with transaction.atomic():
        explanation = PatientExplanation(
            extent=classes["extent"] or "",
            jic_type=classes["jic_type"] or "",
            stage=(classes["stage"] or "")[:80],
            stage_source=classes["stage_source"] or "",
            study=study,
            author=user,
            author_name=user.get_full_name() or user.get_username(),
            note=note,
            series=hip.analysis.series,
            side=hip.side,
            instance=slice_result.instance,
            proportion=min(max(hip.proportion, 0.0), 1.0),
            grade=hip.grade or "none",
            proportion_interval=hip.proportion_interval,
        )
        explanation.image.save(f"{secrets.token_hex(8)}.png", ContentFile(image), save=False)
        explanation.save()
        audit_record(
            actor=user,
            action="explanation.create",
            object_type="patient_explanation",
            object_id=explanation.pk,
            study=study,
            after={
                "side": explanation.side,
                "grade": explanation.grade,
                "proportion": explanation.proportion,
                "instance_id": explanation.instance_id,
                "note_chars": len(note),
            },
            client_address=client_address,
        )
    return explanation


def share_link_create(
    *,
    user: Any,
    explanation: PatientExplanation,
    days: int = LINK_DEFAULT_DAYS,
    client_address: str | None,
) -> tuple[ShareLink, str]:
    """A new link to the patient page; returns it and its token (shown only now)."""
    from grading.selectors import user_can_grade

    if not user_can_grade(user=user, study=explanation.study):
        raise PermissionDenied("You may not share this explanation.")
    if not 1 <= int(days) <= LINK_MAX_DAYS:
        raise ValidationError({"days": f"Between 1 and {LINK_MAX_DAYS} days."})
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        link = ShareLink.objects.create(
            explanation=explanation,
            token_hash=token_hash(token),
            created_by=user,
            expires_at=timezone.now() + timedelta(days=int(days)),
        )
        audit_record(
            actor=user,
            action="explanation.link_create",
            object_type="share_link",
            object_id=link.pk,
            study=explanation.study,
            after={"explanation_id": explanation.pk, "expires_at": link.expires_at.isoformat()},
            client_address=client_address,
        )
    return link, token


def share_link_revoke(*, user: Any, link: ShareLink, client_address: str | None) -> ShareLink:
    from grading.selectors import user_can_grade

    if not user_can_grade(user=user, study=link.explanation.study):
        raise PermissionDenied("You may not revoke this link.")
    with transaction.atomic():
        link = (
            ShareLink.objects.select_for_update()
            .select_related("explanation__study")
            .get(pk=link.pk)
        )
        if link.revoked_at is not None:
            return link
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        audit_record(
            actor=user,
            action="explanation.link_revoke",
            object_type="share_link",
            object_id=link.pk,
            study=link.explanation.study,
            after={"explanation_id": link.explanation_id},
            client_address=client_address,
        )
    return link


def share_link_view_record(
    *, link: ShareLink, what: str, outcome: str = "shown", client_address: str | None
) -> None:
    """Someone without a login opened the link (``what``: page or pdf); ``outcome``
    ``expired`` or ``revoked`` when they were turned away.

    Audited once per ``ONFH_PATIENT_LINK_AUDIT_WINDOW_S``: the same link, ``what``,
    ``outcome`` and address again within the window adds no event (a patient reloading
    the page, or a script hammering a revoked link, does not flood the trail)."""
    audit_record_once(
        within_s=settings.ONFH_PATIENT_LINK_AUDIT_WINDOW_S,
        same_address=True,
        same_after=("what", "outcome"),
        actor=None,
        action="explanation.link_view",
        object_type="share_link",
        object_id=link.pk,
        study=link.explanation.study,
        after={"explanation_id": link.explanation_id, "what": what, "outcome": outcome},
        client_address=client_address,
    )


def patient_explanation_pdf_record(
    *, user: Any, explanation: PatientExplanation, client_address: str | None
) -> None:
    """A doctor downloaded the PDF (to print or send it)."""
    audit_record(
        actor=user,
        action="explanation.pdf",
        object_type="patient_explanation",
        object_id=explanation.pk,
        study=explanation.study,
        client_address=client_address,
    )


def patient_explanation_pdf(*, explanation: PatientExplanation) -> bytes:
    context = explanation_context(explanation=explanation)
    with explanation.image.open("rb") as handle:
        image = handle.read()
    date_text = date_format(timezone.localtime(explanation.created), "j F Y")
    side = f"{context['side']} hip" if context["side"] else "hip"
    return explanation_pdf(
        title="Your hip MRI, explained",
        sections=explanation_sections(explanation=explanation),
        note=explanation.note,
        doctor_name=explanation.author_name,
        date_text=date_text,
        site_name=context["site_name"],
        image_png=image,
        facts=[
            (
                "Femoral head shown",
                f"The {side}, on the slice with the most necrosis; "
                "necrosis in orange, the head outlined in blue.",
            ),
            ("Share of the femoral head", f"{context['percent']} %"),
            *(
                [("Likely range", str(context["percent_range"]))]
                if context["percent_range"]
                else []
            ),
            ("Grade", str(context["grade_words"]).capitalize()),
        ],
    )
