"""Reads about sign-in: who needs a second factor, which provider groups map where."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from grading.accounts.models import IdentityProviderGroup, SiteSignInPolicy
from grading.models import Site
from grading.models.sites import Role


def user_totp_devices(*, user: Any, confirmed: bool = True) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed)


def user_site_requires_totp(*, user: Any) -> bool:
    """True when a site the user belongs to requires a second factor of its members."""
    return SiteSignInPolicy.objects.filter(site__memberships__user=user, require_totp=True).exists()


def user_needs_second_factor(*, user: Any) -> bool:
    """A local sign-in asks for a TOTP code when the user has one set up or a site of
    theirs requires it."""
    return user_totp_devices(user=user).exists() or user_site_requires_totp(user=user)


def idp_groups_for(*, groups: list[str]) -> QuerySet[IdentityProviderGroup]:
    return IdentityProviderGroup.objects.filter(group__in=groups).select_related("site")


def user_administers_site(*, user: Any, site: Site) -> bool:
    from grading.selectors import user_role_at

    if getattr(user, "is_superuser", False):
        return True
    return user_role_at(user=user, site=site) == Role.SITE_ADMIN


def sites_administered_by(*, user: Any) -> QuerySet[Site]:
    """The sites whose sign-in settings the user may change (every site for a superuser)."""
    if not getattr(user, "is_authenticated", False):
        return Site.objects.none()
    if getattr(user, "is_superuser", False):
        return Site.objects.order_by("name")
    return (
        Site.objects.filter(memberships__user=user, memberships__role=Role.SITE_ADMIN)
        .distinct()
        .order_by("name")
    )


def site_sign_in_read(*, site: Site) -> dict[str, Any]:
    """``{"require_totp", "idp_groups": [{"group", "role"}]}`` of a site."""
    policy = SiteSignInPolicy.objects.filter(site=site).first()
    return {
        "require_totp": bool(policy and policy.require_totp),
        "idp_groups": [
            {"group": g.group, "role": g.role}
            for g in IdentityProviderGroup.objects.filter(site=site).order_by("group")
        ],
    }
