"""Django admin for every model. Results and the audit trail are read-only here: they
change only through the services, which keep the audit chain. What can still be changed
here (sites, memberships, studies' site and patient identity, series, shares, analyses'
deletion, users) is audited (``grading.admin_audit``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from grading import models
from grading.admin_audit import AuditedAdminMixin, AuditedModelAdmin
from grading.apis.common import client_address
from grading.services.admin_changes import admin_change_record
from grading.services.audit import audit_record


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

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # A study moved to another site takes its series and instances along (the copies
        # of the site that hold UIDs unique per site in the database).
        models.Series.objects.filter(study=obj).update(site_id=obj.site_id)
        models.Instance.objects.filter(series__study=obj).update(site_id=obj.site_id)


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
    readonly_fields = ["site"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.site_id = obj.study.site_id  # always its study's site
        super().save_model(request, obj, form, change)
        models.Instance.objects.filter(series=obj).update(site_id=obj.site_id)


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


@admin.register(models.ClassificationRevision)
class ClassificationRevisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "hip_result", "jic_type", "kerboul_angle_deg", "author", "created"]
    list_filter = ["jic_type", "findings_entered"]
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


# --- users: the Django user admin, audited -------------------------------------------------

User = get_user_model()
_USER_SECRETS = ("password",)
_USER_STAMPS = ("last_login",)  # set by signing in, not by an administrator


class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):  # type: ignore[type-arg]
    """Django's user admin with every add, change (``is_staff`` and ``is_superuser``
    flips included), delete, group or permission change and password change in the audit
    trail. The password hash never goes there: only whether the password is usable, and a
    change of it as ``admin.password_change``."""

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        snapshot = super().audit_snapshot(obj)
        for name in (*_USER_SECRETS, *_USER_STAMPS):
            snapshot.pop(name, None)
        snapshot["usable_password"] = obj.has_usable_password()
        return snapshot

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        user = form.instance
        before = _user_relations(user) if change else None
        super().save_related(request, form, formsets, change)
        after = _user_relations(user)
        if before is not None and before != after:
            admin_change_record(
                user=request.user,
                obj=user,
                before=before,
                after=after,
                client_address=client_address(request),  # type: ignore[arg-type]
            )

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        stored = User._default_manager.filter(pk=id).values_list("password", flat=True).first()
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = User._default_manager.get(pk=id)
                if user.password != stored:
                    audit_record(
                        actor=request.user,
                        action="admin.password_change",
                        object_type=user._meta.label_lower,
                        object_id=user.pk,
                        after={
                            "username": user.get_username(),
                            "usable_password": user.has_usable_password(),
                        },
                        reason="changed in the admin",
                        client_address=client_address(request),  # type: ignore[arg-type]
                    )
        return response


def _user_relations(user: Any) -> dict[str, list[int]]:
    return {
        "groups": sorted(user.groups.values_list("pk", flat=True)),
        "user_permissions": sorted(user.user_permissions.values_list("pk", flat=True)),
    }


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
