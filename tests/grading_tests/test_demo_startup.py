"""``make run`` serves first and leaves the demo's analyses to its worker (issue 16): the
launcher from an empty var/ answers the login page before any analysis is done, prints
whom to log in as at once (the use cases marked as being prepared), and then prints
"Demo use cases ready." with the patient link once the worker has analysed the studies
the use cases need and the use cases are made. Fails if the seed again analysed the
studies in its own process before the server started."""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest

from grading.management.commands.bench_startup import startup_measure
from tests.conftest import weights_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not weights_available(), reason="no trained weights shipped yet"),
    pytest.mark.timeout(900),
]


def test_make_run_serves_before_the_demo_analyses_which_its_worker_does() -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="onfh-startup-test-"))
    try:
        run = startup_measure(timeout_s=600, var_dir=var_dir)
        log = run.log
        # Served before any analysis: the seed no longer blocks start-up on them.
        assert run.analyses_done_at_first_200 == 0, log[-3000:]
        assert run.ready_s is not None, log[-3000:]
        assert run.ready_s > run.first_200_s
        # The start-up table came at once, saying the use cases are being prepared ...
        first_table = log.index("Use case")
        assert log.index("Portal: http://") > first_table
        assert "(printed when ready)" in log[first_table:]
        assert "analysed by the worker" in log[:first_table]
        # ... and again when ready, with the patient link.
        ready = re.search(r"^Demo use cases ready\.$", log, re.MULTILINE)
        assert ready and re.search(r"http://127\.0\.0\.1:\d+/p/#[\w-]+", log[ready.end() :])
        for user in ("demo", "second_clinician", "demo_teacher", "demo_student", "demo_admin"):
            assert re.search(rf"\s{user}\s+http://127\.0\.0\.1:\d+/", log[ready.end() :]), user

        # Every analysis ran in the launcher's Celery worker, none in the seed.
        assert run.worker_commands and all("celery" in c for c in run.worker_commands), (
            run.worker_names,
            run.worker_commands,
        )
        with sqlite3.connect(f"file:{var_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
            analysed = dict(
                db.execute(
                    "SELECT s.patient_id, s.status FROM grading_study s "
                    "WHERE s.patient_id IN ('DEMO-001','DEMO-002','DEMO-003','DEMO-004',"
                    "'SECOND-001')"
                ).fetchall()
            )
            cases = db.execute("SELECT COUNT(*) FROM teaching_case").fetchone()[0]
            attempts = db.execute("SELECT COUNT(*) FROM teaching_attempt").fetchone()[0]
        # The use cases were made from the worker's results.
        assert set(analysed.values()) == {"done"}, analysed
        assert cases == 4 and attempts == 1
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
