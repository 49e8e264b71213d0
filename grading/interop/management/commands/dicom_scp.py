"""``python manage.py dicom_scp --port 11112 --ae-title ONFH``: the DICOM receiver."""

from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grading.interop.scp import StorageSCP, server_ssl_context
from grading.models import Site


class Command(BaseCommand):
    help = (
        "Run the DICOM receiver (C-ECHO, C-STORE of MR images) until interrupted. "
        "Peers are the RemoteAE rows (admin); unknown calling AE titles are rejected "
        "unless --default-site / ONFH_SCP_DEFAULT_SITE names a site code."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=settings.ONFH_SCP_PORT)
        parser.add_argument("--ae-title", default=settings.ONFH_SCP_AE_TITLE)
        parser.add_argument(
            "--host",
            default=settings.ONFH_SCP_HOST,
            help="Address to listen on (default loopback; 0.0.0.0 for every interface).",
        )
        parser.add_argument("--tls-cert", default=os.environ.get("ONFH_SCP_TLS_CERT", ""))
        parser.add_argument("--tls-key", default=os.environ.get("ONFH_SCP_TLS_KEY", ""))
        parser.add_argument(
            "--tls-client-ca",
            default=os.environ.get("ONFH_SCP_TLS_CLIENT_CA", ""),
            help="With --tls-cert/--tls-key: accept only peers with a client certificate "
            "from this CA (then a remote AE needs no address: its certificate's common "
            "name must be its AE title).",
        )
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
        tls = [options["tls_cert"], options["tls_key"], options["tls_client_ca"]]
        if any(tls) and not all(tls):
            raise CommandError("TLS needs --tls-cert, --tls-key and --tls-client-ca together")
        ssl_context = (
            server_ssl_context(cert=tls[0], key=tls[1], client_ca=tls[2]) if all(tls) else None
        )
        logging.getLogger("grading.interop").setLevel(logging.INFO)
        scp = StorageSCP(
            ssl_context=ssl_context,
            ae_title=ae_title,
            host=options["host"],
            port=options["port"],
            default_site=default_site,
            max_associations=options["max_associations"],
        )
        self.stdout.write(
            f"DICOM receiver {ae_title} listening on {options['host']}:{options['port']}"
            f"{' (TLS, client certificates required)' if ssl_context else ''} "
            f"(unknown calling AE titles: "
            f"{'-> ' + default_site.code if default_site else 'rejected'})"
        )
        self.stdout.flush()
        try:
            scp.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("stopped")
