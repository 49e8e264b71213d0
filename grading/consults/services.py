"""Writes of second opinions: ask, view, answer, close, expire. Each step is audited
on the study's trail; a new request is pushed live to the consultant's WebSocket."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from grading.consults.models import (
    ACTIVE_STATUSES,
    ConsultStatus,
    SecondOpinionAnswer,
    SecondOpinionRequest,
)
from grading.consults.selectors import (
    consult_user_ids_to_notify,
    user_group,
    user_is_consultant_of,
    user_is_requesting_side_of,
)
from grading.models import GradeChoice, HipResult, Site, Study
from grading.services.audit import audit_record
from grading.services.notify import group_message_send

DEFAULT_DAYS = 14
MAX_DAYS = 90


def _request_summary(consult: SecondOpinionRequest) -> dict[str, Any]:
    return {
        "request_id": consult.pk,
        "consultant": consult.consultant.get_username() if consult.consultant_id else None,
        "consultant_site": consult.consultant_site.code if consult.consultant_site_id else None,
        "expires_at": consult.expires_at.isoformat(),
        "status": consult.status,
    }


def _notify_users(*, user_ids: list[int], message: dict[str, Any]) -> None:
    groups = [user_group(user_id=pk) for pk in user_ids]
    if groups:
        transaction.on_commit(lambda: group_message_send(groups=groups, message=message))


def second_opinion_request_create(
    *,
    user: Any,
    study: Study,
    question: str,
    consultant: Any | None = None,
    consultant_site: Site | None = None,
    days: int = DEFAULT_DAYS,
    client_address: str | None,
) -> SecondOpinionRequest:
    """Ask a colleague (``consultant``) or a site (``consultant_site``) about the study.
    Only someone who may grade the study asks (PermissionDenied otherwise)."""
    from grading.selectors import user_can_grade

    if not user_can_grade(user=user, study=study):
        raise PermissionDenied("You may not ask for a second opinion on this study.")
    question = (question or "").strip()
    if not question:
        raise ValidationError({"question": "A request needs a question."})
    if (consultant is None) == (consultant_site is None):
        raise ValidationError({"consultant": "Ask either a colleague or a site."})
    if consultant is not None and consultant.pk == user.pk:
        raise ValidationError({"consultant": "You cannot ask yourself."})
    if not 1 <= int(days) <= MAX_DAYS:
        raise ValidationError({"days": f"Between 1 and {MAX_DAYS} days."})
    with transaction.atomic():
        consult = SecondOpinionRequest.objects.create(
            study=study,
            requester=user,
            consultant=consultant,
            consultant_site=consultant_site,
            question=question[:4000],
            expires_at=timezone.now() + timedelta(days=int(days)),
        )
        audit_record(
            actor=user,
            action="consult.request",
            object_type="second_opinion_request",
            object_id=consult.pk,
            study=study,
            after={**_request_summary(consult), "question": consult.question},
            client_address=client_address,
        )
        _notify_users(
            user_ids=consult_user_ids_to_notify(consult=consult),
            message={
                "type": "consult.request",
                "request_id": consult.pk,
                "study_id": study.pk,
                "requester": user.get_username(),
                "expires_at": consult.expires_at.isoformat(),
            },
        )
    return consult


def second_opinion_request_view_record(
    *, user: Any, consult: SecondOpinionRequest, client_address: str | None
) -> None:
    """The consultant opened the request (the requester's own looks are not events)."""
    if not user_is_consultant_of(user=user, consult=consult):
        return
    audit_record(
        actor=user,
        action="consult.view",
        object_type="second_opinion_request",
        object_id=consult.pk,
        study=consult.study,
        client_address=client_address,
    )


def _valid_hips(
    *, consult: SecondOpinionRequest, hips: list[dict[str, Any]]
) -> list[dict[str, str]]:
    from grading.services.studies import latest_analyses

    analyses = latest_analyses(study_id=consult.study_id)
    known = {
        (h.analysis.series.series_instance_uid, h.side)
        for h in HipResult.objects.filter(analysis__in=list(analyses.values())).select_related(
            "analysis__series"
        )
    }
    cleaned: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for hip in hips:
        key = (str(hip.get("series_instance_uid", "")), str(hip.get("side", "")))
        if key not in known:
            raise ValidationError({"hips": f"This study has no analysed {key[1]} hip in {key[0]}."})
        if key in seen:
            raise ValidationError({"hips": f"The {key[1]} hip of {key[0]} is answered twice."})
        if hip.get("grade") not in GradeChoice.values:
            raise ValidationError({"hips": f"Unknown grade {hip.get('grade')!r}."})
        seen.add(key)
        cleaned.append({"series_instance_uid": key[0], "side": key[1], "grade": hip["grade"]})
    return cleaned


def second_opinion_answer_create(
    *,
    user: Any,
    consult: SecondOpinionRequest,
    hips: list[dict[str, Any]],
    comment: str,
    client_address: str | None,
) -> SecondOpinionAnswer:
    """The consultant's grade per hip and comment. Not a clinical grade: the study's
    grades stay as they are; the requester sees this beside them."""
    with transaction.atomic():
        consult = SecondOpinionRequest.objects.select_for_update().get(pk=consult.pk)
        if not user_is_consultant_of(user=user, consult=consult):
            raise PermissionDenied("This request is not open for you to answer.")
        cleaned = _valid_hips(consult=consult, hips=hips)
        comment = (comment or "").strip()
        if not cleaned and not comment:
            raise ValidationError({"hips": "Give a grade for a hip or a comment."})
        answer = SecondOpinionAnswer.objects.create(
            request=consult, author=user, hips=cleaned, comment=comment[:4000]
        )
        before = consult.status
        consult.status = ConsultStatus.ANSWERED
        consult.save(update_fields=["status"])
        audit_record(
            actor=user,
            action="consult.answer",
            object_type="second_opinion_request",
            object_id=consult.pk,
            study=consult.study,
            before={"status": before},
            after={
                "status": consult.status,
                "answer_id": answer.pk,
                "hips": cleaned,
                "comment": answer.comment,
            },
            client_address=client_address,
        )
        _notify_users(
            user_ids=[consult.requester_id],
            message={
                "type": "consult.answer",
                "request_id": consult.pk,
                "study_id": consult.study_id,
                "consultant": user.get_username(),
            },
        )
    return answer


def second_opinion_request_close(
    *, user: Any, consult: SecondOpinionRequest, client_address: str | None
) -> SecondOpinionRequest:
    """The requester (or a clinician of the study's site) ends the consultant's access."""
    if not user_is_requesting_side_of(user=user, consult=consult):
        raise PermissionDenied("Only the requesting side closes a request.")
    with transaction.atomic():
        consult = SecondOpinionRequest.objects.select_for_update().get(pk=consult.pk)
        if consult.status not in ACTIVE_STATUSES:
            raise ValidationError({"status": f"The request is already {consult.status}."})
        before = consult.status
        consult.status = ConsultStatus.CLOSED
        consult.closed_at = timezone.now()
        consult.save(update_fields=["status", "closed_at"])
        audit_record(
            actor=user,
            action="consult.close",
            object_type="second_opinion_request",
            object_id=consult.pk,
            study=consult.study,
            before={"status": before},
            after={"status": consult.status},
            client_address=client_address,
        )
    return consult


def second_opinion_requests_expire(*, now: Any = None) -> int:
    """Mark open or answered requests past ``expires_at`` expired (access already ended
    at that time: the selectors compare with the clock). Returns how many."""
    now = now or timezone.now()
    expired = 0
    due = SecondOpinionRequest.objects.filter(
        status__in=[s.value for s in ACTIVE_STATUSES], expires_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            consult = (
                SecondOpinionRequest.objects.select_for_update().select_related("study").get(pk=pk)
            )
            if consult.status not in ACTIVE_STATUSES or consult.expires_at > now:
                continue
            before = consult.status
            consult.status = ConsultStatus.EXPIRED
            consult.closed_at = now
            consult.save(update_fields=["status", "closed_at"])
            audit_record(
                actor=None,
                action="consult.expire",
                object_type="second_opinion_request",
                object_id=consult.pk,
                study=consult.study,
                before={"status": before},
                after={"status": consult.status, "expires_at": consult.expires_at.isoformat()},
            )
            expired += 1
    return expired


# One answer for an unknown name, an inactive account and someone who may not give an
# opinion (a student only), and none of them echoed: the errors tell no names apart.
CONSULTANT_REFUSED = "No colleague can be asked under that name."
SITE_REFUSED = "No site can be asked under that code."


def consultant_user_get(*, username: str) -> Any:
    """An active user with a non-student role at some site (who may give an opinion)."""
    from grading.models import Membership, Role

    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or not (
        Membership.objects.filter(user=user).exclude(role=Role.STUDENT).exists()
    ):
        raise ValidationError({"consultant": CONSULTANT_REFUSED})
    return user


def consultant_site_get(*, code: str) -> Site:
    try:
        return Site.objects.get(code=code)
    except (Site.DoesNotExist, ValueError) as exc:
        raise ValidationError({"consultant_site": SITE_REFUSED}) from exc
