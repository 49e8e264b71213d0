from django.contrib import admin

from grading.interop.models import RemoteAE


@admin.register(RemoteAE)
class RemoteAEAdmin(admin.ModelAdmin):
    list_display = ("ae_title", "site", "address", "enabled", "description", "created")
    list_filter = ("enabled", "site")
    search_fields = ("ae_title", "description")
