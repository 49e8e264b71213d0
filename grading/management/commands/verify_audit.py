"""``python manage.py verify_audit``: walk the audit hash chain; exit 1 on the first
changed, missing or inserted event."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from grading.services.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; exit status 1 names the first broken event."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_verify()
        if not report.ok:
            raise CommandError(str(report), returncode=1)
        self.stdout.write(self.style.SUCCESS(str(report)))
