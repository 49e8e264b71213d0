"""Reads of patient explanations: for the doctors of the study's site, and the public
look-up of a share link by its token."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.template.loader import select_template
from django.urls import reverse

from grading.explanations.models import PatientExplanation, ShareLink
from grading.models import GRADING_ROLES, Membership


class LinkGone(Exception):
    """The link existed but expired or was revoked (the public page answers 410)."""

    def __init__(self, link: ShareLink, why: str) -> None:
        super().__init__(why)
        self.link = link
        self.why = why


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def explanations_visible_to(*, user: Any) -> QuerySet[PatientExplanation]:
    """Explanations of studies at the sites where the user holds a clinical role (a
    student, a consultant or a user of another site never sees them)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return PatientExplanation.objects.none()
    qs = PatientExplanation.objects.select_related("study__site", "author", "series", "instance")
    if getattr(user, "is_superuser", False):
        return qs
    sites = Membership.objects.filter(user=user, role__in=[r.value for r in GRADING_ROLES]).values(
        "site_id"
    )
    return qs.filter(study__site_id__in=sites)


def explanation_get_visible(*, user: Any, explanation_id: int) -> PatientExplanation:
    try:
        return explanations_visible_to(user=user).get(pk=explanation_id)
    except (PatientExplanation.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such explanation.") from exc


def link_get_visible(*, user: Any, link_id: int) -> ShareLink:
    try:
        return ShareLink.objects.select_related("explanation__study").get(
            pk=link_id, explanation__in=explanations_visible_to(user=user)
        )
    except (ShareLink.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such link.") from exc


def link_get_by_token(*, token: str) -> ShareLink:
    """The live link of a token: Http404 for an unknown token, LinkGone for an
    expired or revoked one."""
    link = (
        ShareLink.objects.select_related("explanation__study__site", "explanation__author")
        .filter(token_hash=token_hash(token or ""))
        .first()
    )
    if link is None:
        raise Http404("No such link.")
    if link.revoked_at is not None:
        raise LinkGone(link, "revoked")
    if not link.is_live:
        raise LinkGone(link, "expired")
    return link


# --- the text a site can adapt ---------------------------------------------------------

GRADE_WORDS = {
    "none": "no necrosis measured",
    "mild": "mild",
    "moderate": "moderate",
    "severe": "severe",
}


# Where the affected area lies against the part of the head that carries the weight
# (JIC type), in plain words.
JIC_WORDS = {
    "A": "the affected area lies on the inner side of the part of the ball that carries "
    "your weight, covering a third of it or less",
    "B": "the affected area covers up to two thirds of the part of the ball that carries "
    "your weight, from its inner side",
    "C1": "the affected area covers most of the part of the ball that carries your weight",
    "C2": "the affected area covers the part of the ball that carries your weight and "
    "reaches beyond the edge of the hip socket",
}


def interval_words(interval: list[float] | None) -> str:
    """``[0.12, 0.2]`` -> ``"about 12 to 20 %"`` (one decimal under 10 %); "" without one."""
    if not interval:
        return ""
    low, high = (100.0 * float(v) for v in interval)
    if high < 0.1:
        return "less than 0.1 %"

    def say(value: float) -> str:
        return f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    return f"about {say(low)} to {say(high)} %"


def _site_templates(explanation: PatientExplanation, name: str) -> list[str]:
    return [f"explanations/{explanation.study.site.code}/{name}", f"explanations/default/{name}"]


def explanation_context(*, explanation: PatientExplanation) -> dict[str, Any]:
    """What the page, the PDF and the text templates show. Nothing that identifies the
    patient: no name, no ID, no birth date, no UIDs."""
    return {
        "grade": explanation.grade,
        "grade_words": GRADE_WORDS.get(explanation.grade, explanation.grade),
        "percent": f"{explanation.proportion * 100:.1f}",
        "percent_range": interval_words(explanation.proportion_interval),
        "side": explanation.side if explanation.side in ("left", "right") else "",
        "note": explanation.note,
        "doctor_name": explanation.author_name,
        "date": explanation.created,
        "site_name": explanation.study.site.name,
        "extent": explanation.extent,
        "jic_type": explanation.jic_type,
        "jic_words": JIC_WORDS.get(explanation.jic_type, ""),
        "stage": explanation.stage,
        "stage_from_radiograph": explanation.stage_source == "clinician",
    }


def explanation_sections(*, explanation: PatientExplanation) -> list[tuple[str, list[str]]]:
    """The plain-language text, from ``explanations/<site code>/patient_text.txt`` or
    the default: ``# `` starts a section, blank lines separate paragraphs."""
    template = select_template(_site_templates(explanation, "patient_text.txt"))
    text = template.render(explanation_context(explanation=explanation))
    sections: list[tuple[str, list[str]]] = []
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("# "):
            sections.append((lines[0][2:].strip(), []))
            lines = lines[1:]
        if not sections:
            sections.append(("", []))
        if lines:
            sections[-1][1].append(" ".join(lines))
    return sections


def explanation_page_html(*, explanation: PatientExplanation, extra: dict[str, Any]) -> str:
    template = select_template(_site_templates(explanation, "patient.html"))
    return template.render(
        {
            **explanation_context(explanation=explanation),
            "sections": explanation_sections(explanation=explanation),
            **extra,
        }
    )


def share_link_url(*, request: Any, token: str) -> str:
    """The link a patient is given: the token travels in the fragment, which browsers never
    send, so it never reaches a server's or proxy's access log; the page then POSTs it.
    https:// behind a TLS proxy that sets X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER)."""
    return request.build_absolute_uri(reverse("explanations:public")) + "#" + token


__all__ = [
    "LinkGone",
    "explanation_context",
    "explanation_get_visible",
    "explanation_page_html",
    "explanation_sections",
    "explanations_visible_to",
    "link_get_by_token",
    "link_get_visible",
    "share_link_url",
    "token_hash",
]
