"""``python manage.py dicom_scp --port 11112 --ae-title ONFH``: the DICOM receiver."""

from __future__ import annotations

import logging
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from grading.interop.scp import StorageSCP
from grading.models import Site


class Command(BaseCommand):
    help = (
        "Run the DICOM receiver (C-ECHO, C-STORE of MR images) until interrupted. "
        "Peers are the RemoteAE rows (admin); unknown calling AE titles are rejected "
        "unless --default-site / ONFH_SCP_DEFAULT_SITE names a site code."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("ONFH_SCP_PORT", 11112)))
        parser.add_argument("--ae-title", default=os.environ.get("ONFH_SCP_AE_TITLE", "ONFH"))
        parser.add_argument("--host", default=os.environ.get("ONFH_SCP_HOST", "0.0.0.0"))
        parser.add_argument(
            "--default-site",
            default=os.environ.get("ONFH_SCP_DEFAULT_SITE", ""),
            help="Site code for peers that are not RemoteAEs (default: reject them).",
        )
        parser.add_argument("--max-associations", type=int, default=10)

    def handle(self, *args: Any, **options: Any) -> None:
        ae_title = options["ae_title"].strip()
        if not ae_title or len(ae_title) > 16:
            raise CommandError("--ae-title must have 1 to 16 characters")
        default_site = None
        if options["default_site"]:
            default_site = Site.objects.filter(code=options["default_site"]).first()
            if default_site is None:
                raise CommandError(f"no site with code {options['default_site']!r}")
        logging.getLogger("grading.interop").setLevel(logging.INFO)
        scp = StorageSCP(
            ae_title=ae_title,
            host=options["host"],
            port=options["port"],
            default_site=default_site,
            max_associations=options["max_associations"],
        )
        self.stdout.write(
            f"DICOM receiver {ae_title} listening on {options['host']}:{options['port']} "
            f"(unknown calling AE titles: "
            f"{'-> ' + default_site.code if default_site else 'rejected'})"
        )
        self.stdout.flush()
        try:
            scp.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("stopped")
