"""Reads of second opinions, filtered by who may see them.

The consultant (a named user, or any member with a clinical role of the asked site)
sees a request, and through ``grading.selectors.studies_visible_to`` its study, only
while the request is open or answered and not past ``expires_at``. The requester, and
anyone who may grade the study at its own site, sees the request always.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from grading.consults.models import ACTIVE_STATUSES, SecondOpinionAnswer, SecondOpinionRequest
from grading.models import GRADING_ROLES, Membership


def _anonymous(user: Any) -> bool:
    return user is None or not getattr(user, "is_authenticated", False)


def consultant_requests_active(*, user: Any, now: Any = None) -> QuerySet[SecondOpinionRequest]:
    """Requests the user is asked to answer now: addressed to them, or to a site where
    they hold a clinical role; open or answered, not expired."""
    if _anonymous(user):
        return SecondOpinionRequest.objects.none()
    consulting_sites = Membership.objects.filter(
        user=user, role__in=[r.value for r in GRADING_ROLES]
    ).values("site_id")
    return SecondOpinionRequest.objects.filter(
        Q(consultant=user) | Q(consultant_site_id__in=consulting_sites),
        status__in=[s.value for s in ACTIVE_STATUSES],
        expires_at__gt=now or timezone.now(),
    )


def consulted_study_ids(*, user: Any) -> QuerySet[SecondOpinionRequest]:
    """``values("study_id")`` of the studies the user may see as a consultant (an
    uncorrelated subquery for ``studies_visible_to``)."""
    return consultant_requests_active(user=user).values("study_id")


def requests_visible_to(*, user: Any) -> QuerySet[SecondOpinionRequest]:
    """The user's active consultations plus the requests on studies they may grade."""
    if _anonymous(user):
        return SecondOpinionRequest.objects.none()
    qs = SecondOpinionRequest.objects.select_related(
        "study__site", "requester", "consultant", "consultant_site"
    )
    if getattr(user, "is_superuser", False):
        return qs
    grading_sites = Membership.objects.filter(
        user=user, role__in=[r.value for r in GRADING_ROLES]
    ).values("site_id")
    active = consultant_requests_active(user=user).values("pk")
    return qs.filter(Q(requester=user) | Q(study__site_id__in=grading_sites) | Q(pk__in=active))


def request_get_visible(*, user: Any, request_id: int) -> SecondOpinionRequest:
    try:
        return requests_visible_to(user=user).get(pk=request_id)
    except (SecondOpinionRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such second-opinion request.") from exc


def user_is_consultant_of(*, user: Any, consult: SecondOpinionRequest) -> bool:
    return consultant_requests_active(user=user).filter(pk=consult.pk).exists()


def user_is_requesting_side_of(*, user: Any, consult: SecondOpinionRequest) -> bool:
    """The requester, or a clinician of the study's site (who may close it too)."""
    from grading.selectors import user_can_grade

    return consult.requester_id == user.pk or user_can_grade(user=user, study=consult.study)


def request_answers(*, consult: SecondOpinionRequest) -> QuerySet[SecondOpinionAnswer]:
    return consult.answers.select_related("author").order_by("created", "id")


def consult_open_count(*, user: Any) -> int:
    """For the worklist badge: requests waiting for the user's first answer."""
    return consultant_requests_active(user=user).filter(status="open").count()


def consult_user_ids_to_notify(*, consult: SecondOpinionRequest) -> list[int]:
    """Who gets the live notification of a new request."""
    if consult.consultant_id is not None:
        return [consult.consultant_id]
    return list(
        Membership.objects.filter(
            site_id=consult.consultant_site_id, role__in=[r.value for r in GRADING_ROLES]
        ).values_list("user_id", flat=True)
    )


def user_group(*, user_id: int) -> str:
    return f"user-{user_id}"


def consult_groups_of(*, user: Any) -> list[str]:
    """Extra WebSocket groups: the user's own, and one per study they consult on."""
    from grading.selectors import study_group

    if _anonymous(user):
        return []
    groups = [user_group(user_id=user.pk)]
    groups += [
        study_group(study_id=pk)
        for pk in consultant_requests_active(user=user)
        .values_list("study_id", flat=True)
        .distinct()
    ]
    return groups
