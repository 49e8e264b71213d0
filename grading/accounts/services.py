"""Writes about sign-in: the per-site provider groups and second-factor rule (audited),
the portal user behind a provider account, and TOTP enrolment."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from grading.accounts.models import (
    ExternalIdentity,
    IdentityProviderGroup,
    ProviderMembership,
    SiteSignInPolicy,
)
from grading.accounts.selectors import idp_groups_for
from grading.models import Membership, Site
from grading.models.sites import Role
from grading.services.audit import audit_record

# When several of a user's groups map to one site, the strongest role wins.
_ROLE_RANK = [Role.SITE_ADMIN, Role.RADIOLOGIST, Role.CLINICIAN, Role.TEACHER, Role.STUDENT]


@transaction.atomic
def site_sign_in_policy_set(
    *, site: Site, require_totp: bool, actor: Any, client_address: str | None = None
) -> SiteSignInPolicy:
    policy, _ = SiteSignInPolicy.objects.select_for_update().get_or_create(site=site)
    before = {"require_totp": policy.require_totp}
    policy.require_totp = require_totp
    policy.save()
    audit_record(
        actor=actor,
        action="site.sign_in_policy",
        object_type="site",
        object_id=site.pk,
        before=before,
        after={"require_totp": require_totp},
        client_address=client_address,
    )
    return policy


@transaction.atomic
def idp_group_set(
    *, site: Site, group: str, role: str, actor: Any, client_address: str | None = None
) -> IdentityProviderGroup:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    group = group.strip()
    if not group:
        raise ValidationError({"group": "A group name is needed."})
    row = IdentityProviderGroup.objects.filter(site=site, group=group).first()
    before = {"group": group, "role": row.role} if row else None
    if row is None:
        row = IdentityProviderGroup(site=site, group=group)
    row.role = role
    row.full_clean()
    row.save()
    audit_record(
        actor=actor,
        action="site.idp_group",
        object_type="site",
        object_id=site.pk,
        before=before,
        after={"group": group, "role": role},
        client_address=client_address,
    )
    return row


@transaction.atomic
def idp_group_delete(
    *, row: IdentityProviderGroup, actor: Any, client_address: str | None = None
) -> None:
    audit_record(
        actor=actor,
        action="site.idp_group",
        object_type="site",
        object_id=row.site_id,
        before={"group": row.group, "role": row.role},
        after=None,
        client_address=client_address,
    )
    row.delete()


@transaction.atomic
def site_sign_in_update(
    *,
    site: Site,
    require_totp: bool,
    idp_groups: dict[str, str],
    actor: Any,
    client_address: str | None = None,
) -> None:
    """A site admin's whole set of sign-in settings (the API's PUT, the settings page):
    the second-factor rule and the provider groups (group -> role; a group left out is
    removed). Only what changes is written and audited, one event per change; a bad role
    or an empty group name is a ValidationError and nothing is kept."""
    cleaned: dict[str, str] = {}
    for group, role in idp_groups.items():
        name = str(group).strip()
        if not name:
            raise ValidationError({"group": "A group name is needed."})
        if name in cleaned:
            raise ValidationError({"group": f"The group {name!r} is listed twice."})
        cleaned[name] = role
    policy = SiteSignInPolicy.objects.filter(site=site).first()
    if bool(policy and policy.require_totp) != require_totp:
        site_sign_in_policy_set(
            site=site, require_totp=require_totp, actor=actor, client_address=client_address
        )
    current = {g.group: g for g in IdentityProviderGroup.objects.filter(site=site)}
    for name, row in current.items():
        if name not in cleaned:
            idp_group_delete(row=row, actor=actor, client_address=client_address)
    for name, role in cleaned.items():
        if name not in current or current[name].role != role:
            idp_group_set(
                site=site, group=name, role=role, actor=actor, client_address=client_address
            )


def _free_username(wanted: str) -> str:
    User = get_user_model()
    base = (wanted or "user")[:140]
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


@transaction.atomic
def provider_user_sign_in(
    *, issuer: str, claims: dict[str, Any], groups_claim: str = "groups"
) -> Any:
    """The portal user for a provider account, created on first sign-in, with its site
    memberships set from the groups claim (audited when they change)."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise ValidationError("The identity provider sent no subject (sub).")
    link = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )
    if link is None:
        User = get_user_model()
        wanted = str(claims.get("preferred_username") or claims.get("email") or subject)
        user = User.objects.create_user(username=_free_username(wanted.split("@")[0]))
        user.set_unusable_password()  # signs in through the provider only
        link = ExternalIdentity(user=user, issuer=issuer, subject=subject)
        audit_record(
            actor=None,
            action="user.create",
            object_type="user",
            object_id=user.pk,
            after={"username": user.username, "issuer": issuer, "subject": subject},
        )
    user = link.user
    user.email = str(claims.get("email") or user.email)
    user.first_name = str(claims.get("given_name") or user.first_name)[:150]
    user.last_name = str(claims.get("family_name") or user.last_name)[:150]
    user.save()
    link.last_sign_in = timezone.now()
    link.save()
    raw = claims.get(groups_claim) or []
    groups = [str(g) for g in (raw if isinstance(raw, list) else [raw])]
    _sync_provider_memberships(user=user, groups=groups)
    return user


def _sync_provider_memberships(*, user: Any, groups: list[str]) -> None:
    wanted: dict[int, tuple[str, str]] = {}
    for row in idp_groups_for(groups=groups):
        held = wanted.get(row.site_id)
        if held is None or _ROLE_RANK.index(Role(row.role)) < _ROLE_RANK.index(Role(held[0])):
            wanted[row.site_id] = (row.role, row.group)
    current = {
        m.site_id: m
        for m in Membership.objects.select_for_update()
        .filter(user=user)
        .select_related("from_provider")
    }
    for site_id, (role, group) in wanted.items():
        membership = current.get(site_id)
        if membership is not None and not hasattr(membership, "from_provider"):
            continue  # given by hand at this site: the site admin's choice stands
        before = {"role": membership.role} if membership else None
        if membership is None:
            membership = Membership.objects.create(user=user, site_id=site_id, role=role)
            ProviderMembership.objects.create(membership=membership, group=group)
        elif membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
            ProviderMembership.objects.filter(membership=membership).update(group=group)
        else:
            continue
        audit_record(
            actor=None,
            action="membership.provider",
            object_type="membership",
            object_id=membership.pk,
            before=before,
            after={"user": user.username, "site": site_id, "role": role, "group": group},
        )
    for site_id, membership in current.items():
        if site_id not in wanted and hasattr(membership, "from_provider"):
            audit_record(
                actor=None,
                action="membership.provider",
                object_type="membership",
                object_id=membership.pk,
                before={"user": user.username, "site": site_id, "role": membership.role},
                after=None,
            )
            membership.delete()


def totp_device_start(*, user: Any) -> TOTPDevice:
    """An unconfirmed TOTP device (a new secret) for the user to add to an authenticator."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


@transaction.atomic
def totp_device_confirm(*, device: TOTPDevice, token: str) -> bool:
    """Confirm the device with a first code from the authenticator; False if wrong."""
    if not device.verify_token(token.strip()):
        return False
    device.confirmed = True
    device.save()
    TOTPDevice.objects.filter(user=device.user, confirmed=True).exclude(pk=device.pk).delete()
    audit_record(
        actor=device.user,
        action="user.totp_enrol",
        object_type="user",
        object_id=device.user_id,
    )
    return True


def totp_verify(*, user: Any, token: str) -> TOTPDevice | None:
    """The user's confirmed device that accepts ``token`` (each code once), or None."""
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(token.strip()):
            return device
    return None
