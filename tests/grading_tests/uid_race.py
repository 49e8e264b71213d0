"""Two uploads race to put one SOP Instance UID into two different series of one site
(run by ``test_uid_unique_per_site.py`` in a fresh process, against a fresh database).

Upload A stores its file inside an outer transaction and holds it open; upload B starts
meanwhile (its lookup cannot see A's uncommitted row, so only the database can stop it),
then A commits. Prints one JSON line: what each upload got and the rows stored.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import django

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from grading.models import Instance, Membership, Series, Site  # noqa: E402
from grading.services import upload_ingest  # noqa: E402


def main(path_a: str, path_b: str) -> None:
    from django.contrib.auth.models import User

    site = Site.objects.create(code="race", name="Race")
    user = User.objects.create(username="racer")
    Membership.objects.create(user=user, site=site, role="clinician")
    a_stored = threading.Event()
    b_started = threading.Event()
    results: dict[str, str] = {}

    def upload(path: str) -> str:
        try:
            report = upload_ingest(
                user=user,
                site=site,
                client_address=None,
                files=[SimpleUploadedFile(Path(path).name, Path(path).read_bytes())],
            )
        except Exception as exc:  # noqa: BLE001 - reported to the test
            return f"{type(exc).__name__}: {exc}"
        return f"stored={report.stored} duplicates={report.duplicates} rejected={report.rejected}"

    def first() -> None:
        try:
            with transaction.atomic():
                results["a"] = upload(path_a)
                a_stored.set()
                b_started.wait(30)
                time.sleep(1.0)  # B is now at its insert (on PostgreSQL: waiting on A's row)
        finally:
            a_stored.set()
            connection.close()

    def second() -> None:
        try:
            a_stored.wait(30)
            b_started.set()
            results["b"] = upload(path_b)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = list(
        Instance.objects.filter(site=site).values_list(
            "sop_instance_uid", "series__series_instance_uid"
        )
    )
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "results": results,
                "instances": rows,
                "series": Series.objects.filter(site=site).count(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
