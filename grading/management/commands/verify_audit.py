"""``python manage.py verify_audit``: walk the keyed audit chain and hold it to the signed
checkpoints outside the database, then replay the grade and mask events against the
stored grades; exit 1 on the first broken event or on any row that disagrees."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from grading.services.audit import audit_verify
from grading.services.audit_replay import audit_replay


class Command(BaseCommand):
    help = (
        "Check the audit trail's keyed hash chain and checkpoints, and replay grades and "
        "masks against it; exit status 1 names what is wrong."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_verify()
        if not report.ok:
            raise CommandError(str(report), returncode=1)
        self.stdout.write(self.style.SUCCESS(str(report)))
        replay = audit_replay()
        if not replay.ok:
            raise CommandError(str(replay), returncode=1)
        self.stdout.write(self.style.SUCCESS(str(replay)))
