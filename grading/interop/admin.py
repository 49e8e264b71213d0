from django.contrib import admin

from grading.admin_audit import AuditedModelAdmin
from grading.interop.models import RemoteAE


@admin.register(RemoteAE)
class RemoteAEAdmin(AuditedModelAdmin):  # every change audited
    list_display = ("ae_title", "site", "address", "enabled", "description", "created")
    list_filter = ("enabled", "site")
    search_fields = ("ae_title", "description")
