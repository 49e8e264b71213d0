"""Reads about sign-in: who needs a second factor, which provider groups map where."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from grading.accounts.models import IdentityProviderGroup, SiteSignInPolicy


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
