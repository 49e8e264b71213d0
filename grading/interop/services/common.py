"""Helpers shared by the PACS services."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from grading.interop import scu
from grading.interop.models import PacsNode
from grading.interop.selectors import PACS_ROLES


def peer_of(node: PacsNode) -> scu.Peer:
    return scu.Peer(ae_title=node.ae_title, host=node.host, port=node.port)


def portal_ae() -> str:
    return str(settings.ONFH_SCP_AE_TITLE)


def may_use(*, user: Any, site_id: int) -> bool:
    from grading.selectors import user_role_at

    if getattr(user, "is_superuser", False):
        return True
    return user_role_at(user=user, site=site_id) in PACS_ROLES
