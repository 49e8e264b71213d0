"""Admin pages for the teaching models. The de-identification key never shows."""

from django.contrib import admin

from grading.admin_audit import AuditedModelAdmin
from grading.teaching.models import (
    Attempt,
    AttemptMask,
    Case,
    CaseInstance,
    Collection,
    Enrolment,
)


class EnrolmentInline(admin.TabularInline):
    model = Enrolment
    extra = 0
    raw_id_fields = ["student"]


@admin.register(Collection)
class CollectionAdmin(AuditedModelAdmin):
    list_display = ["title", "site", "teacher", "created"]
    list_filter = ["site"]
    search_fields = ["title", "teacher__username"]
    raw_id_fields = ["teacher"]
    inlines = [EnrolmentInline]


@admin.register(Enrolment)
class EnrolmentAdmin(AuditedModelAdmin):
    list_display = ["collection", "student", "created"]
    raw_id_fields = ["collection", "student"]


@admin.register(Case)
class CaseAdmin(AuditedModelAdmin):
    list_display = ["__str__", "collection", "number", "created"]
    list_filter = ["collection"]
    raw_id_fields = ["collection", "source_study", "source_series", "added_by"]
    readonly_fields = ["study_instance_uid", "series_instance_uid", "reference_hips"]


@admin.register(CaseInstance)
class CaseInstanceAdmin(AuditedModelAdmin):
    list_display = ["__str__", "case", "index", "rows", "columns"]
    raw_id_fields = ["case"]


@admin.register(Attempt)
class AttemptAdmin(AuditedModelAdmin):
    list_display = ["__str__", "case", "student", "number", "score", "dice", "submitted_at"]
    list_filter = ["case__collection"]
    raw_id_fields = ["case", "student"]
    readonly_fields = ["grades", "hips", "score", "dice"]


@admin.register(AttemptMask)
class AttemptMaskAdmin(AuditedModelAdmin):
    list_display = ["__str__", "attempt", "necrosis_pixels"]
    raw_id_fields = ["attempt", "case_instance"]
