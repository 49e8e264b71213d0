"""Superusers edit the per-site sign-in settings here; every change goes through the
audited services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from grading.accounts.models import ExternalIdentity, IdentityProviderGroup, SiteSignInPolicy
from grading.accounts.services import idp_group_delete, idp_group_set, site_sign_in_policy_set
from grading.apis.common import client_address


@admin.register(IdentityProviderGroup)
class IdentityProviderGroupAdmin(admin.ModelAdmin):
    list_display = ("group", "site", "role", "created")
    list_filter = ("site", "role")
    search_fields = ("group",)

    def save_model(self, request: Any, obj: IdentityProviderGroup, form: Any, change: bool) -> None:
        if change and "group" in form.changed_data:
            old = IdentityProviderGroup.objects.get(pk=obj.pk)
            idp_group_delete(row=old, actor=request.user, client_address=client_address(request))
        saved = idp_group_set(
            site=obj.site,
            group=obj.group,
            role=obj.role,
            actor=request.user,
            client_address=client_address(request),
        )
        obj.pk = saved.pk

    def delete_model(self, request: Any, obj: IdentityProviderGroup) -> None:
        idp_group_delete(row=obj, actor=request.user, client_address=client_address(request))

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(SiteSignInPolicy)
class SiteSignInPolicyAdmin(admin.ModelAdmin):
    list_display = ("site", "require_totp", "updated")

    def save_model(self, request: Any, obj: SiteSignInPolicy, form: Any, change: bool) -> None:
        saved = site_sign_in_policy_set(
            site=obj.site,
            require_totp=obj.require_totp,
            actor=request.user,
            client_address=client_address(request),
        )
        obj.pk = saved.pk


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "issuer", "subject", "last_sign_in")
    readonly_fields = ("user", "issuer", "subject", "created", "last_sign_in")
    search_fields = ("user__username", "subject")
