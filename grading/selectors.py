"""Reads, filtered by what the user may see. Views and pages use only these.

A user sees the studies of every site they are a member of, plus the studies shared
with them; a superuser sees every study. Anything else is a 404, never a 403, so a
user of another site cannot even learn that a study exists.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from grading.models import (
    GRADING_ROLES,
    UPLOAD_ROLES,
    Analysis,
    ApiToken,
    AuditEvent,
    ClassificationRevision,
    GradeRevision,
    HipResult,
    Instance,
    LabelMap,
    Membership,
    Role,
    Series,
    Site,
    SliceResult,
    Study,
    StudyShare,
    WorkerBeat,
)


def hips_shown(hips: QuerySet[HipResult]) -> QuerySet[HipResult]:
    """The hips a study shows and takes its grade from: those of series that are graded,
    and those a person has graded (a grade revision, set by hand or by a mask edit that
    changed the grade) even if their series is no longer graded. A late slice can make
    a series ungradable (two images at one position, say); the clinician's grade of its
    hips must not vanish from the study, the worklist and the study grade with it. The
    series still says why it is not graded. (A mask edit that left the grade as it was
    stays in the slice's label map versions, viewable as before; the hip's grade is then
    still the AI's and goes with its series.)
    """
    reviewed = Exists(GradeRevision.objects.filter(hip_result=OuterRef("pk")))
    return hips.exclude(Q(analysis__series__graded=False) & ~reviewed)


def _is_anonymous(user: Any) -> bool:
    return user is None or not getattr(user, "is_authenticated", False)


def sites_of(*, user: Any) -> QuerySet[Site]:
    if _is_anonymous(user):
        return Site.objects.none()
    return Site.objects.filter(memberships__user=user)


def site_get_visible(*, user: Any, site_id: int) -> Site:
    """A site the user is a member of (any site for a superuser), else Http404."""
    if _is_anonymous(user):
        raise Http404("No such site.")
    qs = Site.objects.all() if getattr(user, "is_superuser", False) else sites_of(user=user)
    try:
        return qs.distinct().get(pk=site_id)
    except (Site.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such site.") from exc


def memberships_of(*, user: Any) -> QuerySet[Membership]:
    if _is_anonymous(user):
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("site").order_by("site__name")


def user_role_at(*, user: Any, site: Site | int) -> str | None:
    """The user's role at a site, or None when not a member."""
    if _is_anonymous(user):
        return None
    site_id = site if isinstance(site, int) else site.pk
    return (
        Membership.objects.filter(user=user, site_id=site_id).values_list("role", flat=True).first()
    )


def studies_visible_to(*, user: Any) -> QuerySet[Study]:
    """Every study the user may see, with its site joined (no N+1 on the list)."""
    if _is_anonymous(user):
        return Study.objects.none()
    qs = Study.objects.select_related("site")
    if getattr(user, "is_superuser", False):
        return qs
    # Uncorrelated IN subqueries: the database evaluates each once (SQLite builds a
    # temporary index, PostgreSQL a hashed subplan), not once per study row.
    member_sites = Membership.objects.filter(user=user).values("site_id")
    shared_studies = StudyShare.objects.filter(user=user).values("study_id")
    # A consultant sees the study of an open, unexpired second-opinion request to them.
    from grading.consults.selectors import consulted_study_ids

    consulted = consulted_study_ids(user=user)
    return qs.filter(Q(site_id__in=member_sites) | Q(pk__in=shared_studies) | Q(pk__in=consulted))


def study_get_visible(*, user: Any, study_id: int) -> Study:
    """The study, or Http404 when it does not exist or the user may not see it."""
    try:
        return studies_visible_to(user=user).get(pk=study_id)
    except (Study.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such study.") from exc


def study_detail_get(*, user: Any, study_id: int) -> Study:
    """The study with everything the detail page and API need, prefetched in a few queries.

    ``study.series_list``: series with ``instance_list`` (stack order), ``latest_analysis``
    (or None) and ``instance_count``; ``study.hip_list`` and ``study.slice_list`` hold
    the results of the latest analysis of each series; each hip has ``revision_list``
    (oldest first); each instance has ``current_labelmap`` and ``ai_labelmap`` (or None).
    """
    study = study_get_visible(user=user, study_id=study_id)
    series_list = list(
        Series.objects.filter(study=study)
        .annotate(instance_count=Count("instances"))
        .prefetch_related(
            Prefetch(
                "instances",
                queryset=Instance.objects.order_by("position", "instance_number", "id"),
                to_attr="instance_list",
            )
        )
        .order_by("number", "id")
    )
    latest: dict[int, Analysis] = {}
    for analysis in Analysis.objects.filter(series__study=study).order_by("-created", "-id"):
        latest.setdefault(analysis.series_id, analysis)
    analysis_ids = [a.pk for a in latest.values()]
    labelmaps: dict[tuple[int, int], list[LabelMap]] = {}
    for lm in LabelMap.objects.filter(analysis_id__in=analysis_ids).order_by("version"):
        labelmaps.setdefault((lm.analysis_id, lm.instance_id), []).append(lm)
    for series in series_list:
        series.latest_analysis = latest.get(series.pk)
        # The frames of one multi-frame file share one image URL (the lowest row id).
        file_instance: dict[str, int] = {}
        for instance in series.instance_list:
            if instance.frame_number is not None:
                name = instance.file.name
                file_instance[name] = min(file_instance.get(name, instance.pk), instance.pk)
        for instance in series.instance_list:
            if instance.frame_number is not None:
                instance.file_instance_id = file_instance[instance.file.name]
        for instance in series.instance_list:
            versions = (
                labelmaps.get((series.latest_analysis.pk, instance.pk), [])
                if series.latest_analysis
                else []
            )
            instance.ai_labelmap = versions[0] if versions else None
            instance.current_labelmap = versions[-1] if versions else None
    study.series_list = series_list
    study.hip_list = list(
        hips_shown(HipResult.objects.filter(analysis_id__in=analysis_ids))
        .select_related("analysis__series__study")
        .prefetch_related(
            Prefetch(
                "revisions",
                queryset=GradeRevision.objects.select_related("author").order_by("created", "id"),
                to_attr="revision_list",
            ),
            Prefetch(
                "classification_revisions",
                queryset=ClassificationRevision.objects.select_related("author").order_by(
                    "created", "id"
                ),
                to_attr="classification_list",
            ),
        )
        .order_by("analysis__series__number", "analysis__series_id", "side")
    )
    # Each hip's JIC type and Kerboul arcs come from the study's coronal and sagittal
    # series (services.classifications): from the hips loaded here, not a query per hip.
    planes: dict[str, dict[str, dict[str, Any]]] = {}
    for hip in study.hip_list:
        found = hip.ai_classification
        if found and found.get("plane") and hip.analysis.status == "done":
            planes.setdefault(hip.side, {}).setdefault(found["plane"], found)
    for hip in study.hip_list:
        own = hip.ai_classification
        hip._study_planes = {
            **({own["plane"]: own} if own and own.get("plane") else {}),
            **{
                k: v
                for k, v in planes.get(hip.side, {}).items()
                if not (own and own.get("plane") == k)
            },
        }
    study.slice_list = list(
        SliceResult.objects.filter(analysis_id__in=analysis_ids)
        .select_related("instance", "analysis__series")
        .order_by(
            "analysis__series__number",
            "analysis__series_id",
            "instance__position",
            "instance__instance_number",
            "instance_id",
        )
    )
    return study


def series_get_visible(*, user: Any, series_id: int) -> Series:
    try:
        return Series.objects.select_related("study__site").get(
            pk=series_id, study__in=studies_visible_to(user=user)
        )
    except (Series.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such series.") from exc


def instance_get_visible(*, user: Any, instance_id: int) -> Instance:
    try:
        return Instance.objects.select_related("series__study__site").get(
            pk=instance_id, series__study__in=studies_visible_to(user=user)
        )
    except (Instance.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such instance.") from exc


def series_latest_analysis(*, series: Series) -> Analysis | None:
    return series.analyses.order_by("-created", "-id").first()


def labelmap_for_instance(*, instance: Instance, version: str = "current") -> LabelMap | None:
    """The AI's (``version="ai"``) or the current label map of the latest analysis."""
    analysis = series_latest_analysis(series=instance.series)
    if analysis is None:
        return None
    qs = LabelMap.objects.filter(analysis=analysis, instance=instance)
    return qs.order_by("version").first() if version == "ai" else qs.order_by("-version").first()


def hip_result_get(*, study: Study, series_instance_uid: str, side: str) -> HipResult:
    """The hip of the latest analysis of a series of this study (Http404 if none)."""
    series = Series.objects.filter(study=study, series_instance_uid=series_instance_uid).first()
    analysis = series_latest_analysis(series=series) if series else None
    hip = HipResult.objects.filter(analysis=analysis, side=side).first() if analysis else None
    if hip is None:
        raise Http404("No such hip result.")
    return hip


def study_audit_events(*, study: Study) -> QuerySet[AuditEvent]:
    """The study's events, oldest first."""
    return AuditEvent.objects.filter(study=study).select_related("actor").order_by("seq")


def user_can_see_study(*, user: Any, study: Study) -> bool:
    return studies_visible_to(user=user).filter(pk=study.pk).exists()


def user_can_grade(*, user: Any, study: Study) -> bool:
    """A member of the study's site with a clinical or teaching role; never a student,
    never someone who only has the study shared with them."""
    if _is_anonymous(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user_role_at(user=user, site=study.site_id) in GRADING_ROLES


def user_can_edit_masks(*, user: Any, study: Study) -> bool:
    return user_can_grade(user=user, study=study)


def user_can_upload(*, user: Any, site: Site) -> bool:
    if _is_anonymous(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user_role_at(user=user, site=site) in UPLOAD_ROLES


def user_can_share(*, user: Any, study: Study) -> bool:
    return user_can_grade(user=user, study=study)


def user_upload_sites(*, user: Any) -> QuerySet[Site]:
    if _is_anonymous(user):
        return Site.objects.none()
    return Site.objects.filter(
        memberships__user=user, memberships__role__in=[r.value for r in UPLOAD_ROLES]
    ).order_by("name")


def user_groups(*, user: Any) -> list[str]:
    """Channels groups the user's WebSocket joins: one per site, one per shared study."""
    if _is_anonymous(user):
        return []
    if getattr(user, "is_superuser", False):
        groups = [site_group(site_id=pk) for pk in Site.objects.values_list("pk", flat=True)]
    else:
        groups = [
            site_group(site_id=pk)
            for pk in Membership.objects.filter(user=user).values_list("site_id", flat=True)
        ]
    groups += [
        study_group(study_id=pk)
        for pk in StudyShare.objects.filter(user=user).values_list("study_id", flat=True)
    ]
    # Second opinions: the user's own group and the studies they consult on.
    from grading.consults.selectors import consult_groups_of

    groups += [g for g in consult_groups_of(user=user) if g not in groups]
    return groups


def site_group(*, site_id: int) -> str:
    return f"site-{site_id}"


def study_group(*, study_id: int) -> str:
    return f"study-{study_id}"


__all__ = [
    "Role",
    "hip_result_get",
    "instance_get_visible",
    "labelmap_for_instance",
    "memberships_of",
    "series_get_visible",
    "series_latest_analysis",
    "site_get_visible",
    "site_group",
    "sites_of",
    "studies_visible_to",
    "study_audit_events",
    "study_detail_get",
    "study_get_visible",
    "study_group",
    "user_can_edit_masks",
    "user_can_grade",
    "user_can_see_study",
    "user_can_share",
    "user_can_upload",
    "user_groups",
    "user_role_at",
    "user_upload_sites",
]


def workers_alive() -> list[WorkerBeat]:
    """Workers seen within ``ONFH_STALE_AFTER_S`` seconds (``WorkerBeat``)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    since = timezone.now() - timedelta(seconds=settings.ONFH_STALE_AFTER_S)
    return list(WorkerBeat.objects.filter(last_seen__gte=since))


def analysis_stall_reason() -> str | None:
    """ "no worker" when no live worker takes analyses (queue ``gpu``), else None."""
    alive = workers_alive()
    if any("gpu" in w.queues.split(",") or not w.queues for w in alive):
        return None
    return "no worker"


def api_tokens_of(*, user: Any) -> QuerySet[ApiToken]:
    """The user's own API tokens, newest first (none for anonymous)."""
    if _is_anonymous(user):
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).select_related("user").order_by("-created", "-id")


def study_visible_now(*, user_id: int, study_id: int) -> bool:
    """Whether the user (read again: still active, still a superuser?) may see the study
    at this moment; for messages pushed to sockets opened earlier."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    return user is not None and studies_visible_to(user=user).filter(pk=study_id).exists()
