"""Reads for the PACS features: which nodes a user sees, which sends of a series; which
remote AE may C-GET which site's instances."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from grading.interop.models import PacsNode, PacsSend
from grading.models import Instance, Role, Series
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


def remote_ae_retrieve_site(
    *, calling_ae: str, address: str, tls_subject: str | None
) -> int | None:
    """The site whose studies a calling AE may C-GET, or None. Only an enabled
    :class:`RemoteAE` with ``may_retrieve``, trusted as a sender is: from its ``address``,
    or (without one) over TLS with its AE title as the client certificate's common name.
    A receiver's default site never lets an unknown peer read."""
    from grading.interop.models import RemoteAE

    title = calling_ae.strip()
    remote = RemoteAE.objects.filter(ae_title=title, enabled=True, may_retrieve=True).first()
    if remote is None:
        return None
    if remote.address:
        return remote.site_id if remote.address == address else None
    return remote.site_id if tls_subject is not None and tls_subject == title else None


def site_instances_to_get(
    *, site_id: int, study_uids: list[str], series_uids: list[str], sop_uids: list[str]
) -> list[Instance]:
    """The stored instances of the site's studies that a C-GET names, one row per stored
    file (a multi-frame file is one instance, not one per frame), in stack order. Studies
    of other sites match nothing."""
    qs = Instance.objects.filter(site_id=site_id, series__study__site_id=site_id)
    if study_uids:
        qs = qs.filter(series__study__study_instance_uid__in=study_uids)
    if series_uids:
        qs = qs.filter(series__series_instance_uid__in=series_uids)
    if sop_uids:
        qs = qs.filter(sop_instance_uid__in=sop_uids)
    seen: set[str] = set()
    instances: list[Instance] = []
    for instance in qs.select_related("series__study").order_by(
        "series__study_id", "series__number", "series_id", "position", "frame_number", "id"
    ):
        if instance.sop_instance_uid not in seen:
            seen.add(instance.sop_instance_uid)
            instances.append(instance)
    return instances
