"""PACS nodes: a site admin adds one (audited)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from grading.interop.models import PacsNode
from grading.interop.selectors import user_is_site_admin
from grading.models import Site
from grading.services.audit import audit_record


def pacs_node_create(
    *,
    user: Any,
    site: Site,
    name: str,
    ae_title: str,
    host: str,
    port: int,
    send_on_confirm: bool = False,
    client_address: str | None = None,
) -> PacsNode:
    """A site admin (or a superuser) adds a PACS node to their site. Audited."""
    if not user_is_site_admin(user=user, site_id=site.pk):
        raise PermissionDenied("Only the site's administrators add PACS nodes.")
    node = PacsNode(
        site=site,
        name=name.strip(),
        ae_title=ae_title,
        host=host.strip(),
        port=port,
        send_on_confirm=send_on_confirm,
    )
    node.full_clean()
    with transaction.atomic():
        node.save()
        audit_record(
            actor=user,
            action="pacs.node_create",
            object_type="pacs_node",
            object_id=node.pk,
            after={
                "site": site.pk,
                "name": node.name,
                "ae_title": node.ae_title,
                "host": node.host,
                "port": node.port,
                "send_on_confirm": node.send_on_confirm,
            },
            client_address=client_address,
        )
    return node
