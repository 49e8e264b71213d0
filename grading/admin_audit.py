"""A ModelAdmin mixin that puts every add, change and delete made in the admin (the
model's own form, its inlines, the bulk delete action) in the audit trail, through
``grading.services.admin_changes``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from grading.services.admin_changes import admin_change_record, model_snapshot


def _address(request: HttpRequest) -> str | None:
    from grading.apis.common import client_address

    return client_address(request)  # type: ignore[arg-type]


def _stored(
    obj: models.Model, snapshot: Callable[[Any], dict[str, Any]] = model_snapshot
) -> dict[str, Any] | None:
    if obj.pk is None:
        return None
    stored = type(obj)._default_manager.filter(pk=obj.pk).first()
    return snapshot(stored) if stored is not None else None


class AuditedAdminMixin:
    """Mix into a ModelAdmin (before ``admin.ModelAdmin``)."""

    def audit_snapshot(self, obj: Any) -> dict[str, Any]:
        """What the trail keeps of ``obj`` (a subclass leaves secrets out)."""
        return model_snapshot(obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = _stored(obj, self.audit_snapshot) if change else None
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        admin_change_record(
            user=request.user,
            obj=obj,
            before=before,
            after=self.audit_snapshot(obj),
            client_address=_address(request),
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before, pk = self.audit_snapshot(obj), obj.pk
        super().delete_model(request, obj)  # type: ignore[misc]
        obj.pk = pk
        admin_change_record(
            user=request.user, obj=obj, before=before, after=None, client_address=_address(request)
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in list(queryset):
            self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Inline rows (memberships of a site, enrolments of a collection). The forms'
        instances already hold the new values: the old ones are read from the database."""
        stored = {
            id(f.instance): (f.instance.pk, _stored(f.instance))
            for f in formset.initial_forms
            if f.instance.pk is not None
        }
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
        address = _address(request)
        for obj in formset.new_objects:
            admin_change_record(
                user=request.user,
                obj=obj,
                before=None,
                after=model_snapshot(obj),
                client_address=address,
            )
        for obj, _ in formset.changed_objects:
            admin_change_record(
                user=request.user,
                obj=obj,
                before=stored.get(id(obj), (None, None))[1],
                after=model_snapshot(obj),
                client_address=address,
            )
        for obj in formset.deleted_objects:
            pk, before = stored.get(id(obj), (None, None))
            obj.pk = pk
            admin_change_record(
                user=request.user,
                obj=obj,
                before=before or model_snapshot(obj),
                after=None,
                client_address=address,
            )


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    pass


__all__ = ["AuditedAdminMixin", "AuditedModelAdmin"]
