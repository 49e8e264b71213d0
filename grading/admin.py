"""Django admin for every model. Results and the audit trail are read-only here: they
change only through the services, which keep the audit chain. What can still be changed
here (sites, memberships, studies' site and patient identity, series, shares, analyses'
deletion) is audited (``grading.admin_audit``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from grading import models
from grading.admin_audit import AuditedModelAdmin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(models.Site)
class SiteAdmin(AuditedModelAdmin):
    list_display = ["name", "code", "created"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(AuditedModelAdmin):
    list_display = ["user", "site", "role", "created"]
    list_filter = ["role", "site"]
    search_fields = ["user__username", "site__name"]
    autocomplete_fields = ["user", "site"]


class SeriesInline(admin.TabularInline):
    model = models.Series
    extra = 0
    fields = ["series_instance_uid", "description", "number", "modality", "plane"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(models.Study)
class StudyAdmin(AuditedModelAdmin):
    list_display = [
        "id",
        "patient_name",
        "patient_id",
        "study_date",
        "site",
        "status",
        "ai_grade",
        "grade",
        "created",
    ]
    list_filter = ["status", "grade", "site"]
    search_fields = ["patient_name", "patient_id", "study_instance_uid", "accession_number"]
    date_hierarchy = "created"
    list_select_related = ["site"]
    readonly_fields = [
        "status",
        "progress_done",
        "progress_total",
        "error",
        "ai_grade",
        "grade",
        "flags",
        "created",
        "updated",
        "created_by",
    ]
    inlines = [SeriesInline]


@admin.register(models.StudyShare)
class StudyShareAdmin(AuditedModelAdmin):
    list_display = ["study", "user", "shared_by", "created"]
    search_fields = ["user__username", "study__study_instance_uid"]
    raw_id_fields = ["study", "user", "shared_by"]


@admin.register(models.Series)
class SeriesAdmin(AuditedModelAdmin):
    list_display = [
        "id",
        "series_instance_uid",
        "description",
        "number",
        "modality",
        "plane",
        "study",
    ]
    list_filter = ["modality", "plane"]
    search_fields = ["series_instance_uid", "description"]
    raw_id_fields = ["study"]


@admin.register(models.Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "sop_instance_uid",
        "series",
        "instance_number",
        "position",
        "rows",
        "columns",
        "size_bytes",
    ]
    search_fields = ["sop_instance_uid", "sha256"]
    list_select_related = ["series"]


@admin.register(models.Analysis)
class AnalysisAdmin(AuditedModelAdmin):
    list_display = [
        "id",
        "series",
        "status",
        "progress_done",
        "progress_total",
        "model_version",
        "attempts",
        "heartbeat",
        "started",
        "finished",
    ]
    list_filter = ["status", "model_version"]
    search_fields = ["series__series_instance_uid", "celery_task_id"]
    readonly_fields = [f.name for f in models.Analysis._meta.fields]
    list_select_related = ["series"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.HipResult)
class HipResultAdmin(ReadOnlyAdmin):
    list_display = ["id", "analysis", "side", "proportion", "ai_grade", "grade"]
    list_filter = ["side", "ai_grade", "grade"]


@admin.register(models.SliceResult)
class SliceResultAdmin(ReadOnlyAdmin):
    list_display = ["id", "analysis", "instance", "edited"]
    list_filter = ["edited"]


@admin.register(models.LabelMap)
class LabelMapAdmin(ReadOnlyAdmin):
    list_display = ["id", "instance", "analysis", "version", "kind", "author", "created"]
    list_filter = ["kind"]


@admin.register(models.GradeRevision)
class GradeRevisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "hip_result", "grade", "source", "author", "created"]
    list_filter = ["grade", "source"]
    search_fields = ["reason", "author__username"]


@admin.register(models.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "seq",
        "time",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "study",
        "client_address",
    ]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_username", "object_id", "reason"]
    date_hierarchy = "time"


@admin.register(models.AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ["id", "seq", "hash"]


@admin.register(models.IncomingSeries)
class IncomingSeriesAdmin(ReadOnlyAdmin):
    list_display = ["series_instance_uid", "site", "receiver", "started", "expires"]


@admin.register(models.OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "group", "created"]


@admin.register(models.ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Seen here; made and revoked by their owners (the "API tokens" page, audited)."""

    list_display = ("prefix", "user", "name", "created", "expires", "last_used", "revoked")
    list_filter = ("revoked",)
    search_fields = ("user__username", "name", "prefix")
    exclude = ("key_hash", "password_check")


@admin.register(models.WorkerBeat)
class WorkerBeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "queues", "pid", "started", "last_seen")
