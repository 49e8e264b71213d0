"""The database holds SOP Instance and Series Instance UIDs unique per site (not only
the ingest): two concurrent uploads putting one SOP Instance UID into two different series
of a site cannot both succeed; the loser gets a clear 409-style error and keeps nothing.
Run with real concurrency in a fresh process on PostgreSQL (its own database) and on
SQLite (its own file)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pydicom
import pytest
from django.db import IntegrityError, transaction

from grading.services.ingest import UidConflict, _is_uid_conflict
from tests.conftest import LivePortal, write_phantom_series
from tests.grading_tests.factories import InstanceFactory, SeriesFactory, SiteFactory

ROOT = Path(__file__).resolve().parents[2]
PG = ("127.0.0.1", 5432)


def _two_files(tmp_path: Path) -> tuple[Path, Path]:
    """One slice twice: same SOPInstanceUID, other Study and Series Instance UIDs."""
    phantom = write_phantom_series(tmp_path / "a", seed=3, n_slices=1)
    a = phantom.paths[0]
    ds = pydicom.dcmread(a)
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    b = tmp_path / "b.dcm"
    ds.save_as(b)
    return a, b


def _race(portal: LivePortal, a: Path, b: Path) -> dict:
    portal.manage("migrate", "--noinput", "-v", "0")
    done = subprocess.run(
        [sys.executable, "-m", "tests.grading_tests.uid_race", str(a), str(b)],
        cwd=ROOT,
        env=portal.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check(outcome: dict, uid: str) -> None:
    results = outcome["results"]
    assert results["a"].startswith("stored=1"), results
    # The UID is in the site once, whichever way B was stopped.
    assert [row[0] for row in outcome["instances"]] == [uid], outcome
    if outcome["vendor"] == "postgresql":
        # B's lookup could not see A's uncommitted row: only the database stopped it.
        assert results["b"].startswith("UidConflict: Another upload stored"), results
        assert outcome["series"] == 1, "B's series was rolled back with its instance"
    else:
        # SQLite lets one writer at a time: B waits for A's commit, then the ingest
        # itself sees the UID (or the database refuses it).
        assert results["b"].startswith(("UidConflict", "stored=0")), results


@pytest.mark.production
@pytest.mark.timeout(600)
def test_concurrent_uploads_of_one_uid_into_two_series_on_postgres(tmp_path) -> None:
    import psycopg

    try:
        admin = psycopg.connect(host=PG[0], port=PG[1], dbname="test", autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is a required peer: {error}")
    name = f"onfh_uidrace_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        a, b = _two_files(tmp_path)
        portal = LivePortal(
            tmp_path / "var", {"DATABASE_URL": f"postgres://{PG[0]}:{PG[1]}/{name}"}
        )
        outcome = _race(portal, a, b)
        assert outcome["vendor"] == "postgresql"
        _check(outcome, str(pydicom.dcmread(a, stop_before_pixels=True).SOPInstanceUID))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.timeout(600)
def test_concurrent_uploads_of_one_uid_into_two_series_on_sqlite(tmp_path) -> None:
    a, b = _two_files(tmp_path)
    portal = LivePortal(
        tmp_path / "var", {"DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'race.sqlite3'}"}
    )
    outcome = _race(portal, a, b)
    assert outcome["vendor"] == "sqlite"
    _check(outcome, str(pydicom.dcmread(a, stop_before_pixels=True).SOPInstanceUID))


@pytest.mark.django_db
def test_the_database_refuses_a_uid_twice_in_one_site_and_allows_it_in_another() -> None:
    site = SiteFactory()
    first = InstanceFactory(series=SeriesFactory(study__site=site))
    other_series = SeriesFactory(study__site=site)
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        InstanceFactory(series=other_series, sop_instance_uid=first.sop_instance_uid)
    assert _is_uid_conflict(refused.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        SeriesFactory(study__site=site, series_instance_uid=other_series.series_instance_uid)
    # Another site may hold the same UIDs (issue 13 item 7).
    elsewhere = SeriesFactory(series_instance_uid=other_series.series_instance_uid)
    twin = InstanceFactory(series=elsewhere, sop_instance_uid=first.sop_instance_uid)
    assert twin.site_id == elsewhere.site_id != site.pk
    assert UidConflict.status_code == 409
