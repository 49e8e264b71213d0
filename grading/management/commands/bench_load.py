"""``python manage.py bench_load``: the portal under load, in the production mode (and
the embedded mode beside it), for ``make bench`` (issue 13, item 24).

Production: a throw-away PostgreSQL database, Redis (broker, channel layer, cache) under a
unique key prefix, one daphne, 2 Celery worker processes (``gpu,default``, solo). Embedded:
SQLite, the file-system broker, 1 worker, as ``make run``. In each: 3 studies are
uploaded and graded first (something to browse), then locust (headless, its own
process, ``_locustfile.py``) runs 50 users browsing worklists and the viewer's
requests while 10 users upload one series each at once and poll it until graded, for
``--seconds``. Then the bench waits for every analysis to finish (``--drain`` seconds at
most) and checks that nothing was lost: each uploaded instance stored once (rows and
files), every analysis done, ``verify_audit`` passing.

Reported: p50/p95/p99 and errors per endpoint (locust), upload-to-graded (from the
upload request's arrival to its last analysis finished, from the database). Results go
to var/bench-load/<mode>.json and are printed as Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grading.management.commands._processes import ROOT, Stack
from grading.management.commands.bench_portal import (
    _commit,
    _machine,
    _percentile,
    _write_phantom,
)

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
LOCUSTFILE = Path(__file__).with_name("_locustfile.py")

STATE = """
import json
from django.db.models import Count, Max
from grading.models import Analysis, Instance, Series, Study
uids = json.loads('{uids}')
rows = []
for series in Series.objects.filter(series_instance_uid__in=uids).select_related("study"):
    analyses = list(series.analyses.values_list("status", "finished"))
    instances = list(Instance.objects.filter(series=series).values_list("sop_instance_uid", "file"))
    done = [f for s, f in analyses if s == "done" and f]
    rows.append({{
        "series": series.series_instance_uid,
        "created": series.study.created.isoformat(),
        "instances": len(instances),
        "distinct_sop": len({{i for i, _ in instances}}),
        "distinct_files": len({{f for _, f in instances}}),
        "missing_files": sum(
            1 for _, f in instances if not Instance._meta.get_field("file").storage.exists(f)
        ),
        "analyses": [s for s, _ in analyses],
        "graded_s": (max(done) - series.study.created).total_seconds() if done else None,
    }})
active = Analysis.objects.exclude(status__in=["done", "failed"]).count()
failed = Analysis.objects.filter(status="failed").count()
print("STATE", json.dumps({{"series": rows, "active": active, "failed": failed}}))
"""


class Command(BaseCommand):
    help = "Load benchmark (locust): production mode (PostgreSQL, Redis, 2 workers) and embedded."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--mode", action="append", choices=["production", "embedded"], default=None
        )
        parser.add_argument("--seconds", type=int, default=150, help="locust run time")
        parser.add_argument("--drain", type=int, default=600, help="wait for analyses, at most")
        parser.add_argument("--browsers", type=int, default=50)
        parser.add_argument("--uploaders", type=int, default=10)
        parser.add_argument("--slices", type=int, default=12, help="slices per uploaded series")
        parser.add_argument("--out", default=str(ROOT / "var" / "bench-load"))

    def handle(self, *args: Any, **options: Any) -> None:
        modes = options["mode"] or ["production", "embedded"]
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        results = []
        for mode in modes:
            self.stdout.write(f"== {mode} ==")
            result = self._run(mode, options, out)
            (out / f"{mode}.json").write_text(json.dumps(result, indent=2))
            results.append(result)
            self.stdout.write(self._markdown(result))
        bad = [r["mode"] for r in results if not r["checks"]["ok"]]
        if bad:
            raise CommandError(f"nothing-lost checks failed in: {', '.join(bad)}")

    # --- one mode -------------------------------------------------------------------------

    def _run(self, mode: str, options: dict[str, Any], out: Path) -> dict[str, Any]:
        work = Path(tempfile.mkdtemp(prefix=f"onfh-bench-load-{mode}-"))
        cleanup: list[Any] = []
        try:
            env = {"ONFH_TORCH_THREADS": "1", "LOG_LEVEL": "WARNING"}
            workers = 1
            if mode == "production":
                env.update(self._production_env(cleanup))
                workers = 2
            stack = Stack(work / "var", env)
            stack.site_code = "bench"
            cleanup.append(stack.stop_all)
            stack.manage("migrate", "--noinput", "-v", "0")
            stack.create_user()
            stack.start_server()
            for k in range(workers):
                stack.start_worker(f"worker{k + 1}", "gpu,default", extra=("--pool", "solo"))
            started = time.monotonic()
            seed = [
                _write_phantom(work / f"seed{k}", seed=100 + k, n_slices=8, matrix=(256, 256))
                for k in range(3)
            ]
            for paths in seed:
                code, body, _ = stack.curl_upload(paths)
                if code != 201:
                    raise CommandError(f"seed upload failed: {code} {body}")
            uploads = [
                _write_phantom(
                    work / f"up{k}",
                    seed=200 + k,
                    n_slices=options["slices"],
                    matrix=(256, 256),
                    tag=f"load-{mode}",
                )
                for k in range(options["uploaders"])
            ]
            seed_uids = self._series_uids(seed)
            self._wait_for(stack, seed_uids, options["drain"])
            self.stdout.write(f"  seeded in {time.monotonic() - started:.0f} s; locust starts")
            stats = self._locust(stack, uploads, options, work)
            upload_uids = self._series_uids(uploads)
            state = self._wait_for(stack, seed_uids + upload_uids, options["drain"])
            verify = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
                cwd=ROOT,
                env=stack.env,
                capture_output=True,
                text=True,
            )
            uploaded = [r for r in state["series"] if r["series"] in set(upload_uids)]
            expected = {u: len(p) for u, p in zip(upload_uids, uploads, strict=True)}
            lost = [
                r["series"]
                for r in uploaded
                if not (
                    r["instances"]
                    == r["distinct_sop"]
                    == r["distinct_files"]
                    == expected[r["series"]]
                    and r["missing_files"] == 0
                )
            ]
            graded = [r["graded_s"] for r in uploaded if r["graded_s"] is not None]
            checks = {
                "series_uploaded": len(upload_uids),
                "series_stored": len(uploaded),
                "instances_stored_once": not lost and len(uploaded) == len(upload_uids),
                "analyses_all_done": state["active"] == 0 and state["failed"] == 0,
                "analyses_failed": state["failed"],
                "verify_audit": verify.returncode == 0,
                "verify_audit_output": (verify.stdout + verify.stderr).strip()[-600:],
            }
            checks["ok"] = all(
                checks[k] for k in ("instances_stored_once", "analyses_all_done", "verify_audit")
            ) and len(graded) == len(upload_uids)
            return {
                "mode": mode,
                "workers": workers,
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "commit": _commit(),
                "machine": _machine(),
                "seconds": options["seconds"],
                "browsers": options["browsers"],
                "uploaders": options["uploaders"],
                "slices": options["slices"],
                "endpoints": stats,
                "upload_to_graded_s": {
                    "n": len(graded),
                    "p50": round(_percentile(graded, 0.5), 1) if graded else None,
                    "max": round(max(graded), 1) if graded else None,
                },
                "checks": checks,
            }
        finally:
            logs = Path(options["out"]) / f"{mode}-logs"
            logs.mkdir(parents=True, exist_ok=True)
            for log in (work / "var").glob("*.log"):
                shutil.copy(log, logs / log.name)
            for step in reversed(cleanup):
                try:
                    step()
                except Exception as error:  # noqa: BLE001 - clean up the rest anyway
                    self.stderr.write(f"cleanup: {error}")
            shutil.rmtree(work, ignore_errors=True)

    def _production_env(self, cleanup: list[Any]) -> dict[str, str]:
        import psycopg
        import redis

        try:
            admin = psycopg.connect(host=PG[0], port=PG[1], dbname="test", autocommit=True)
            redis.Redis(host=REDIS[0], port=REDIS[1]).ping()
        except Exception as error:  # noqa: BLE001
            raise CommandError(f"the production mode needs PostgreSQL and Redis: {error}") from None
        tag = uuid.uuid4().hex[:10]
        name = f"onfh_bench_{tag}"
        admin.execute(f'CREATE DATABASE "{name}"')
        prefix = f"onfh-bench-{tag}"

        def drop() -> None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
            client = redis.Redis(host=REDIS[0], port=REDIS[1])
            for key in client.scan_iter(f"*{prefix}*"):
                client.delete(key)

        cleanup.append(drop)
        return {
            "DATABASE_URL": f"postgres://{PG[0]}:{PG[1]}/{name}",
            "CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "ONFH_BROKER_KEY_PREFIX": f"{prefix}:",
            "REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "ONFH_CHANNELS_PREFIX": f"{prefix}-asgi",
            "ONFH_CACHE_PREFIX": prefix,
            "SECRET_KEY": f"bench-load-{tag}-not-a-real-secret-key-0123456789abcdef",
        }

    @staticmethod
    def _series_uids(groups: list[list[Path]]) -> list[str]:
        import pydicom

        return [
            str(pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID)
            for paths in groups
        ]

    def _state(self, stack: Stack, uids: list[str]) -> dict[str, Any]:
        out = stack.manage("shell", "-c", STATE.format(uids=json.dumps(uids)))
        return json.loads(out.split("STATE", 1)[1])

    def _wait_for(self, stack: Stack, uids: list[str], limit: float) -> dict[str, Any]:
        deadline = time.monotonic() + limit
        while True:
            state = self._state(stack, uids)
            graded = [r for r in state["series"] if r["graded_s"] is not None]
            if (len(graded) == len(uids) and state["active"] == 0) or time.monotonic() > deadline:
                return state
            time.sleep(3)

    def _locust(
        self, stack: Stack, uploads: list[list[Path]], options: dict[str, Any], work: Path
    ) -> list[dict[str, Any]]:
        users = options["browsers"] + options["uploaders"]
        env = {
            **stack.env,
            "BENCH_TOKEN": stack.token,
            "BENCH_UPLOADS": json.dumps([[str(p) for p in paths] for paths in uploads]),
            "BENCH_BROWSERS": str(options["browsers"]),
            "BENCH_UPLOADERS": str(options["uploaders"]),
        }
        prefix = work / "locust"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--users",
                str(users),
                "--spawn-rate",
                str(users),
                "--run-time",
                f"{options['seconds']}s",
                "--host",
                f"http://127.0.0.1:{stack.port}",
                "--csv",
                str(prefix),
                "--only-summary",
                "--exit-code-on-error",
                "0",
                "--stop-timeout",
                "30",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=options["seconds"] + 300,
        )
        if done.returncode:
            raise CommandError(f"locust failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        rows = []
        with open(f"{prefix}_stats.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append(
                    {
                        "endpoint": row["Name"] if row["Name"] != "Aggregated" else "all",
                        "requests": int(row["Request Count"]),
                        "errors": int(row["Failure Count"]),
                        "p50_ms": _num(row["50%"]),
                        "p95_ms": _num(row["95%"]),
                        "p99_ms": _num(row["99%"]),
                        "rps": round(float(row["Requests/s"]), 1),
                    }
                )
        failures = Path(f"{prefix}_failures.csv")
        if failures.exists():
            (Path(options["out"]) / "failures.csv").write_text(failures.read_text())
        return rows

    @staticmethod
    def _markdown(result: dict[str, Any]) -> str:
        lines = [
            f"{result['mode']} ({result['workers']} worker process(es)), {result['date']}, "
            f"commit {result['commit']}; {result['machine']}",
            "",
            "| endpoint | requests | errors | p50 ms | p95 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in result["endpoints"]:
            lines.append(
                f"| {row['endpoint']} | {row['requests']} | {row['errors']} | {row['p50_ms']} "
                f"| {row['p95_ms']} | {row['p99_ms']} |"
            )
        graded = result["upload_to_graded_s"]
        checks = result["checks"]
        lines += [
            "",
            f"upload to graded ({graded['n']} series of {result['slices']} slices, uploaded "
            f"at once): p50 {graded['p50']} s, max {graded['max']} s. Nothing lost: "
            f"instances stored once {checks['instances_stored_once']}, every analysis done "
            f"{checks['analyses_all_done']}, verify_audit {checks['verify_audit']}.",
            "",
        ]
        return "\n".join(lines)


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
