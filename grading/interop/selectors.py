"""Reads for the PACS features: which nodes a user sees, which sends of a series."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from grading.interop.models import PacsNode, PacsSend
from grading.models import Role, Series
from grading.models.sites import GRADING_ROLES

# Who may use a site's PACS nodes: the roles that upload and grade (never a student:
# a PACS query by patient ID reveals identifiers).
PACS_ROLES = GRADING_ROLES


def pacs_nodes_visible_to(*, user: Any) -> QuerySet[PacsNode]:
    if user is None or not getattr(user, "is_authenticated", False):
        return PacsNode.objects.none()
    qs = PacsNode.objects.select_related("site")
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(
        site__memberships__user=user,
        site__memberships__role__in=[r.value for r in PACS_ROLES],
    ).distinct()


def pacs_node_get_visible(*, user: Any, node_id: int) -> PacsNode:
    try:
        return pacs_nodes_visible_to(user=user).get(pk=node_id)
    except (PacsNode.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such PACS node.") from exc


def user_is_site_admin(*, user: Any, site_id: int) -> bool:
    from grading.selectors import user_role_at

    if getattr(user, "is_superuser", False):
        return True
    return user_role_at(user=user, site=site_id) == Role.SITE_ADMIN


def series_sends(*, series: Series) -> QuerySet[PacsSend]:
    return PacsSend.objects.filter(series=series).select_related("node").order_by("-created", "-id")
