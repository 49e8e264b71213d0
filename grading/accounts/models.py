"""How people sign in, per site: the identity provider's groups that give a role at a site,
whether the site's members must use a second factor, and the link from a provider's
account (issuer, subject) to a portal user."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from grading.models import Site
from grading.models.sites import Role


class SiteSignInPolicy(models.Model):
    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="sign_in_policy")
    require_totp = models.BooleanField(
        default=False,
        help_text="Local-password members must also give a TOTP code.",
    )
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.site}: TOTP {'required' if self.require_totp else 'optional'}"


class IdentityProviderGroup(models.Model):
    """A value of the provider's groups claim that makes its holder a member of ``site``
    with ``role``. The provider is authoritative for such memberships: they are set at each
    sign-in and removed when the group is gone."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="idp_groups")
    group = models.CharField(max_length=200, help_text="A value of the groups claim.")
    role = models.CharField(max_length=20, choices=Role.choices)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site__name", "group"]
        constraints = [
            models.UniqueConstraint(fields=["site", "group"], name="idp_group_unique_site_group"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="idp_group_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} -> {self.site} ({self.role})"


class ExternalIdentity(models.Model):
    """A provider account (``iss``, ``sub``) linked to a portal user: a provider account
    never takes over a local account that happens to share its name."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    last_sign_in = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="external_identity_unique_iss_sub"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} <- {self.issuer} {self.subject}"


class ProviderMembership(models.Model):
    """Marks a Membership as set by the identity provider (so a later sign-in without the
    group removes it, and a membership a site admin gave by hand is left alone)."""

    membership = models.OneToOneField(
        "grading.Membership", on_delete=models.CASCADE, related_name="from_provider"
    )
    group = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.membership} from group {self.group}"
