from typing import Any

from django.contrib import admin

from grading.admin_audit import AuditedModelAdmin
from grading.interop.models import PacsNode, PacsSend, RemoteAE


@admin.register(RemoteAE)
class RemoteAEAdmin(AuditedModelAdmin):  # every change audited
    list_display = (
        "ae_title",
        "site",
        "address",
        "enabled",
        "may_retrieve",
        "description",
        "created",
    )
    list_filter = ("enabled", "may_retrieve", "site")
    search_fields = ("ae_title", "description")


@admin.register(PacsNode)
class PacsNodeAdmin(AuditedModelAdmin):  # every change audited
    list_display = ("name", "ae_title", "host", "port", "site", "send_on_confirm", "created")
    list_filter = ("site", "send_on_confirm")
    search_fields = ("name", "ae_title", "host")


@admin.register(PacsSend)
class PacsSendAdmin(admin.ModelAdmin):
    """Sends are read here, never edited: the worker owns their state."""

    list_display = ("id", "series", "node", "state", "attempts", "trigger", "created", "updated")
    list_filter = ("state", "node")
    readonly_fields = [f.name for f in PacsSend._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
