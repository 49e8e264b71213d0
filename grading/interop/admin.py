from typing import Any

from django.contrib import admin

from grading.interop.models import PacsNode, PacsSend, RemoteAE
from grading.services.audit import audit_record


@admin.register(RemoteAE)
class RemoteAEAdmin(admin.ModelAdmin):
    list_display = ("ae_title", "site", "address", "enabled", "description", "created")
    list_filter = ("enabled", "site")
    search_fields = ("ae_title", "description")


@admin.register(PacsNode)
class PacsNodeAdmin(admin.ModelAdmin):
    """PACS nodes; every change made here is audited (``pacs.node_change``)."""

    list_display = ("name", "ae_title", "host", "port", "site", "send_on_confirm", "created")
    list_filter = ("site", "send_on_confirm")
    search_fields = ("name", "ae_title", "host")

    def save_model(self, request: Any, obj: PacsNode, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="pacs.node_change" if change else "pacs.node_create",
            object_type="pacs_node",
            object_id=obj.pk,
            after={
                "site": obj.site_id,
                "name": obj.name,
                "ae_title": obj.ae_title,
                "host": obj.host,
                "port": obj.port,
                "send_on_confirm": obj.send_on_confirm,
                "changed": list(form.changed_data),
            },
            client_address=request.META.get("REMOTE_ADDR"),
        )


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
