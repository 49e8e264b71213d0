"""``python manage.py audit_checkpoint``: append a signed checkpoint of the audit chain's
head to ONFH_AUDIT_CHECKPOINT_FILE now (the portal also does so every
ONFH_AUDIT_CHECKPOINT_EVERY events and ONFH_AUDIT_CHECKPOINT_EVERY_S seconds)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from grading.services.audit import audit_checkpoint_write


class Command(BaseCommand):
    help = "Append a signed checkpoint of the audit chain head outside the database."

    def handle(self, *args: Any, **options: Any) -> None:
        line = audit_checkpoint_write(force=True)
        where = settings.ONFH_AUDIT_CHECKPOINT_FILE
        if line is None:
            self.stdout.write(f"nothing new since the last checkpoint in {where}")
        else:
            self.stdout.write(f"checkpoint #{line['seq']} {line['hash'][:16]}… -> {where}")
