"""``python manage.py seed_demo``: demo sites, users, studies and use cases (embedded mode only).

Creates the site "Demo Hospital" with the user ``demo`` (clinician) and one user of each
other role, a second site with a clinician, and synthetic phantom studies
(``grading.engine.phantoms`` written as DICOM by ``grading.dicom.writer``) uploaded
through the same ingest service as a real upload. Unless ``--no-use-cases``, it then
prepares every use case through the real services (``_demo_use_cases``): the worklist
shows a flagged, a failed and queued studies; a teaching collection with a scored
attempt; an open and an answered second opinion; a patient explanation with a share
link. It ends with a table of whom to log in as for each use case, and the patient link
(``--base-url`` makes it a full URL).

``--stage`` splits the work so that ``make run`` serves at once (``onfh_site.launch``):
``accounts`` makes the sites and users and prints the table, marked as being prepared;
``worker`` then uploads the studies, leaves every analysis to the running worker, waits
for the ones the use cases need, makes the use cases and prints the table again, ready,
with the patient link. ``all`` (the default) does everything in this process, the
analyses included, for use without a worker; it leaves DEMO-007 and DEMO-008 queued.

The password is ``ONFH_DEMO_PASSWORD`` or else generated once, kept in var/ and printed.
Running it again changes nothing (fixed UIDs: re-uploads are deduplicated; each use case
is made only when missing). Refuses to run against PostgreSQL unless ``--force``.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse

from grading.models import Membership, Role, Series, Site

DEMO_SITE = ("Demo Hospital", "demo")
SECOND_SITE = ("Second Opinion Clinic", "second")
DEMO_USERS: list[tuple[str, str, str]] = [
    ("demo", "demo", Role.CLINICIAN),
    ("demo_radiologist", "demo", Role.RADIOLOGIST),
    ("demo_teacher", "demo", Role.TEACHER),
    ("demo_student", "demo", Role.STUDENT),
    ("demo_admin", "demo", Role.SITE_ADMIN),
    ("second_clinician", "second", Role.CLINICIAN),
]
# (seed, necrosis per side, patient id): one study per grade band.
DEMO_STUDIES: list[tuple[int, dict[str, str], str]] = [
    (101, {"right": "moderate", "left": "none"}, "DEMO-001"),
    (102, {"right": "mild", "left": "severe"}, "DEMO-002"),
    (103, {"right": "none", "left": "none"}, "DEMO-003"),
    (104, {"right": "severe", "left": "mild"}, "DEMO-004"),
]


def demo_password() -> tuple[str, bool]:
    """(password, generated here): ONFH_DEMO_PASSWORD, else one kept under var/."""
    if settings.ONFH_DEMO_PASSWORD:
        return settings.ONFH_DEMO_PASSWORD, False
    path = Path(settings.VAR_DIR) / "demo_password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(12)
    path.write_text(password)
    path.chmod(0o600)
    return password, True


class Command(BaseCommand):
    help = "Create the demo sites, users and phantom studies of the embedded mode."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--studies", type=int, default=4, help="phantom studies (max 4)")
        parser.add_argument(
            "--no-use-cases",
            dest="use_cases",
            action="store_false",
            help="only users and phantom studies, left for the worker (no teaching, "
            "consults, explanation, flagged, failed or queued studies)",
        )
        parser.add_argument("--base-url", default="", help="the portal's URL, to print full links")
        parser.add_argument("--slices", type=int, default=20, help="slices per phantom series")
        parser.add_argument(
            "--force", action="store_true", help="run even against a PostgreSQL database"
        )
        parser.add_argument(
            "--stage",
            choices=["all", "accounts", "worker"],
            default="all",
            help="all: everything here, analyses included; accounts: sites and users only; "
            "worker: studies and use cases, the analyses left to the running worker",
        )
        parser.add_argument(
            "--migrate", action="store_true", help="migrate the database first (one process)"
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=900.0,
            help="--stage worker: seconds to wait for the worker's analyses",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        engine = settings.DATABASES["default"]["ENGINE"]
        if not engine.endswith("sqlite3") and not options["force"]:
            raise CommandError(
                "seed_demo creates a user with a known password and belongs to the embedded "
                "mode; this database is not SQLite (DATABASE_URL is set). Use --force to "
                "insist."
            )
        stage = options["stage"]
        if options["migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        count = min(max(options["studies"], 0), len(DEMO_STUDIES))
        base = options["base_url"].rstrip("/")
        if stage == "worker":
            if not options["use_cases"]:
                raise CommandError("--stage worker prepares the use cases: drop --no-use-cases")
            token = self._use_cases(count, options["slices"], by_worker=True, wait=options["wait"])
            self.stdout.write(self.style.SUCCESS("\nDemo use cases ready."))
            self._print_use_cases(base, token, count)
            self._say_still_analysing()
            return
        password, generated = demo_password()
        with transaction.atomic():
            sites = {}
            for name, code in (DEMO_SITE, SECOND_SITE):
                sites[code], _ = Site.objects.get_or_create(code=code, defaults={"name": name})
            user_model = get_user_model()
            # One hash for the one shared demo password: hashing is slow on purpose, and
            # this runs at each `make run` before the portal serves.
            hashed = make_password(password)
            for username, site_code, role in DEMO_USERS:
                user, _ = user_model.objects.get_or_create(username=username)
                user.password = hashed
                user.save()
                Membership.objects.update_or_create(
                    user=user, site=sites[site_code], defaults={"role": role}
                )
            self._admin_permissions(user_model.objects.get(username="demo_admin"))
        token = None
        if stage == "all" and options["use_cases"]:
            token = self._use_cases(count, options["slices"], by_worker=False)
        elif stage == "all" and count:
            self._load_studies(count, options["slices"], sites["demo"])
        self.stdout.write(
            self.style.SUCCESS("Demo users ready." if stage == "accounts" else "Demo data ready.")
        )
        self.stdout.write(
            f"  login: demo / {password}"
            + (
                f"  (generated; kept in {Path(settings.VAR_DIR) / 'demo_password'})"
                if generated
                else ""
            )
        )
        self.stdout.write(
            "  other demo users (same password): " + ", ".join(u for u, _, _ in DEMO_USERS[1:])
        )
        if options["use_cases"]:
            self._print_use_cases(base, token, count)

    def _admin_permissions(self, user: Any) -> None:
        """The demo's site administrator keeps members, roles and AE titles in the Django
        admin: staff, with exactly those models' permissions (not a superuser)."""
        from django.contrib.auth.models import Permission

        wanted = [
            ("grading", "site", ["view"]),
            ("grading", "membership", ["view", "add", "change", "delete"]),
            ("interop", "remoteae", ["view", "add", "change", "delete"]),
            ("interop", "pacsnode", ["view", "add", "change"]),
        ]
        permissions = [
            Permission.objects.get(content_type__app_label=app, codename=f"{action}_{model}")
            for app, model, actions in wanted
            for action in actions
        ]
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.user_permissions.add(*permissions)

    def _use_cases(self, count: int, slices: int, *, by_worker: bool, wait: float = 0.0) -> str:
        from grading.management.commands import _demo_use_cases as uc

        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        graded = [
            uc.DemoStudy(patient_id, seed, necrosis)
            for seed, necrosis, patient_id in DEMO_STUDIES[:count]
        ]
        # The studies the use cases need go first, so that the worker analyses them first.
        needed = [*graded, *(d for d in uc.STATE_STUDIES if d.site != "demo")]
        studies = needed + [d for d in uc.STATE_STUDIES if d not in needed]
        if not count:
            needed.append(uc.STATE_STUDIES[0])  # DEMO-005 stands in for the graded ones
        if by_worker:
            for demo in studies:
                uc.study_load_for_worker(demo=demo, slices=slices, say=say)
            try:
                status = uc.studies_wait_analysed(
                    patient_ids=[d.patient_id for d in needed], timeout_s=wait, say=say
                )
            except TimeoutError as exc:
                raise CommandError(f"demo use cases not prepared: {exc}") from exc
            failed = [p for p, s in status.items() if s != "done"]
            if failed:
                raise CommandError(
                    f"demo use cases not prepared: the analysis of {', '.join(failed)} failed "
                    "(see the worklist for the reason)"
                )
        else:
            for demo in studies:  # all uploads first: they go quiet meanwhile
                uc.study_load(demo=demo, slices=slices, say=say)
            for demo in studies:
                uc.study_prepare(demo=demo, say=say)
        if count:
            uc.teaching_prepare(case_studies=[d.patient_id for d in graded], say=say)
        answered = uc.ANSWERED_STUDY if count >= 2 else "DEMO-005"
        uc.consults_prepare(open_study="SECOND-001", answered_study=answered, say=say)
        return uc.explanation_prepare(
            patient_id=uc.EXPLAINED_STUDY if count else "DEMO-005", say=say
        )

    def _say_still_analysing(self) -> None:
        from grading.models import Study, StudyStatus

        busy = list(
            Study.objects.filter(status__in=[StudyStatus.QUEUED, StudyStatus.RUNNING])
            .order_by("patient_id")
            .values_list("patient_id", "status")
        )
        if busy:
            self.stdout.write(
                "  The worker is still analysing "
                + ", ".join(f"{p} ({s})" for p, s in busy)
                + ": watch them on the worklist."
            )
        self.stdout.flush()

    def _print_use_cases(self, base: str, token: str | None, count: int) -> None:
        """The table of whom to log in as; ``token`` None: the use cases are still being
        prepared (the worker is analysing the studies they need)."""
        rows = [
            ("Grade studies (worklist: done, flagged, failed, being analysed)", "demo", "/"),
            ("Ask and read second opinions", "demo", "/consults/"),
            ("Answer a second opinion (second site)", "second_clinician", "/consults/"),
            ("Read with a radiologist's role", "demo_radiologist", "/"),
            ("Teach: the collection and the class's results", "demo_teacher", "/teaching/"),
            ("Learn: one case scored, one not yet tried", "demo_student", "/teaching/"),
            ("Site administrator of Demo Hospital", "demo_admin", "/"),
        ]
        if not count:
            rows = [r for r in rows if "teaching" not in r[2]]
        if token is None:
            self.stdout.write(
                "\n  The demo studies are being uploaded and analysed by the worker; the use "
                "cases\n  below are ready in a minute or two (a second table follows then, "
                "with the\n  patient link). The portal already serves; logins work now."
            )
        self.stdout.write("\n  Use case                                                 log in as")
        for what, user, path in rows:
            self.stdout.write(f"  {what:<56} {user:<17} {base}{path}")
        if token is None:
            link = "(printed when ready)"
        else:
            link = f"{base}{reverse('explanations:public')}#{token}"
        self.stdout.write(f"  {'Patient page (no login; also on a phone)':<56} {'-':<17} {link}")
        self.stdout.flush()

    def _load_studies(self, count: int, slices: int, site: Site) -> None:
        import pydicom.uid

        from grading.dicom.writer import write_mr_series
        from grading.engine.phantoms import make_bilateral_series
        from grading.services import upload_ingest

        user = get_user_model().objects.get(username="demo")
        for seed, necrosis, patient_id in DEMO_STUDIES[:count]:
            study_uid = pydicom.uid.generate_uid(entropy_srcs=["onfh-demo-study", str(seed)])
            series_uid = pydicom.uid.generate_uid(entropy_srcs=["onfh-demo-series", str(seed)])
            if Series.objects.filter(series_instance_uid=series_uid).exists():
                self.stdout.write(f"  phantom study {patient_id}: already loaded")
                continue
            with tempfile.TemporaryDirectory(prefix="onfh-demo-") as tmp:
                phantom = make_bilateral_series(
                    seed, n_slices=slices, matrix=(256, 256), necrosis=necrosis
                )
                paths = write_mr_series(
                    phantom.images,
                    Path(tmp),
                    pixel_spacing_mm=phantom.pixel_spacing_mm,
                    slice_thickness_mm=phantom.slice_thickness_mm,
                    spacing_between_slices_mm=phantom.spacing_between_slices_mm,
                    image_orientation=phantom.image_orientation,
                    first_position=phantom.first_position,
                    patient_name=f"PHANTOM^{patient_id}",
                    patient_id=patient_id,
                    study_instance_uid=study_uid,
                    series_instance_uid=series_uid,
                    study_date="20240115",
                )
                files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
            report = upload_ingest(user=user, site=site, files=files, client_address=None)
            self.stdout.write(
                f"  phantom study {patient_id}: {report.stored} slices stored, "
                f"{report.duplicates} already there"
            )
