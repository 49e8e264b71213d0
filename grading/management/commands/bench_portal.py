"""``python manage.py bench_portal``: the portal's performance targets, measured for real.

1. ``upload``: a 20-slice bilateral study (384 x 384) from the start of the upload to
   ``done``, in the embedded mode (SQLite, file-system broker, a separate solo Celery
   worker, daphne), warm worker; target under 10 s on 2 cores.
2. ``list``: ``GET /api/studies/`` with 1000 studies over HTTP (keep-alive), several
   filters; target p95 under 100 ms. Also counts the SQL queries of one list request.
3. ``ingest``: a zip of 200 MR files (~50 MB) POSTed to ``/api/uploads/`` and the same
   zip POSTed to Debian's Orthanc (``/instances``) on loopback, alternating, same
   machine, same run; files/s and the server's CPU seconds.

Each part runs in its own temporary var dir (nothing touches var/). Results are printed
and appended to docs/benchmarks.md (``--no-write`` to skip).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from grading.management.commands._processes import ROOT, Orthanc, Stack, cpu_seconds

RESULTS = ROOT / "docs" / "benchmarks.md"


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, {platform.python_version()}, load average {load}"


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "?"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _write_phantom(
    out: Path, *, seed: int, n_slices: int, matrix: tuple[int, int], copies: int = 1, tag: str = ""
) -> list[Path]:
    import pydicom.uid

    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    phantom = make_bilateral_series(
        seed, n_slices=n_slices, matrix=matrix, necrosis={"right": "moderate", "left": "mild"}
    )
    study_uid = pydicom.uid.generate_uid(entropy_srcs=["bench", tag, str(seed)])
    paths: list[Path] = []
    for copy in range(copies):
        paths += write_mr_series(
            phantom.images,
            out / f"series{copy:02d}",
            pixel_spacing_mm=phantom.pixel_spacing_mm,
            slice_thickness_mm=phantom.slice_thickness_mm,
            spacing_between_slices_mm=phantom.spacing_between_slices_mm,
            image_orientation=phantom.image_orientation,
            first_position=phantom.first_position,
            patient_id=f"BENCH-{seed}",
            study_instance_uid=study_uid,
            series_instance_uid=pydicom.uid.generate_uid(
                entropy_srcs=["bench-series", tag, str(seed), str(copy)]
            ),
            series_number=copy + 1,
            study_date="20240301",
        )
    return paths


def _write_enhanced(out: Path, classic: list[Path], *, tag: str) -> Path:
    """The classic files as one Legacy Converted Enhanced MR file (highdicom)."""
    import pydicom
    import pydicom.uid
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    datasets = [pydicom.dcmread(p) for p in classic]
    enhanced = LegacyConvertedEnhancedMRImage(
        legacy_datasets=datasets,
        series_instance_uid=pydicom.uid.generate_uid(entropy_srcs=["bench-enh", tag]),
        series_number=99,
        sop_instance_uid=pydicom.uid.generate_uid(entropy_srcs=["bench-enh-sop", tag]),
        instance_number=1,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "enhanced.dcm"
    enhanced.save_as(path, enforce_file_format=True)
    return path


SECTION = "## Portal"
SECTION_INTRO = (
    "Measured by `python manage.py bench_portal` (grading/management/commands/bench_portal.py):"
    " real daphne and Celery worker processes in the embedded mode, each part in a fresh"
    " temporary var dir. Each run adds a dated entry below; other sections belong to other"
    " parts of the project."
)


def _append_to_portal_section(report: str) -> None:
    """Add ``report`` at the end of the Portal section (made if missing), leaving the
    other sections as they are."""
    RESULTS.parent.mkdir(exist_ok=True)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    start = text.find(f"\n{SECTION}\n")
    if start < 0:
        RESULTS.write_text(f"{text.rstrip()}\n\n{SECTION}\n\n{SECTION_INTRO}\n\n{report}")
        return
    end = text.find("\n## ", start + len(SECTION) + 2)
    end = len(text) if end < 0 else end + 1
    head, tail = text[:end].rstrip(), text[end:]
    RESULTS.write_text(f"{head}\n\n{report.rstrip()}\n" + (f"\n{tail}" if tail else ""))


POPULATE = """
import random, datetime, json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.contrib.auth.models import User
from grading.services.tokens import api_token_create
from grading.models import *
N = {n}
rng = random.Random(7)
user = User.objects.get(username="bench")
site = Site.objects.get(code="bench")
other = Site.objects.get_or_create(code="bench2", defaults={{"name": "Bench 2"}})[0]
Membership.objects.get_or_create(user=user, site=other, defaults={{"role": "radiologist"}})
grades = ["none", "mild", "moderate", "severe"]
studies = Study.objects.bulk_create([
    Study(site=site if i % 3 else other, study_instance_uid=f"2.25.{{i}}.{{rng.random()}}"[:64],
          patient_name=f"PATIENT {{i}}", patient_id=f"P{{i:05d}}",
          study_date=datetime.date(2020, 1, 1) + datetime.timedelta(days=i),
          status=rng.choice(["done"] * 6 + ["queued", "running", "failed"]),
          ai_grade=rng.choice(grades), grade=rng.choice(grades),
          flags=["small_head: tiny"] if i % 7 == 0 else [], progress_done=20, progress_total=20)
    for i in range(N)])
series = Series.objects.bulk_create([
    Series(study=s, site_id=s.site_id, series_instance_uid=f"2.25.9{{s.pk}}",
           description="AX T1", number=1, plane="axial") for s in studies])
analyses = Analysis.objects.bulk_create([
    Analysis(series=s, status="done", model_version="bench", progress_done=20, progress_total=20)
    for s in series])
HipResult.objects.bulk_create([
    HipResult(analysis=a, side=side, ai_grade="mild", grade="mild", proportion=0.1,
              head_volume_mm3=1e4, necrosis_volume_mm3=1e3)
    for a in analyses for side in ("left", "right")])
client = Client()
token = api_token_create(user=user, name='bench')[1]
with CaptureQueriesContext(connection) as ctx:
    r = client.get("/api/studies/", HTTP_AUTHORIZATION=f"Token {{token}}")
assert r.status_code == 200, r.content[:500]
print("RESULT", json.dumps({{"queries": len(ctx.captured_queries), "count": r.json()["count"]}}))
"""


class Command(BaseCommand):
    help = "Measure upload-to-graded, study list latency and ingest throughput (vs Orthanc)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--parts", default="upload,list,ingest")
        parser.add_argument("--runs", type=int, default=3, help="timed uploads (part 1)")
        parser.add_argument("--studies", type=int, default=1000)
        parser.add_argument("--requests", type=int, default=50, help="per list variant")
        parser.add_argument("--rounds", type=int, default=3, help="ingest rounds (part 3)")
        parser.add_argument("--no-write", action="store_true")
        parser.add_argument("--keep", action="store_true", help="keep the temp folder")

    def handle(self, *args: Any, **options: Any) -> None:
        parts = [p.strip() for p in options["parts"].split(",") if p.strip()]
        tmp = Path(tempfile.mkdtemp(prefix="onfh-bench-"))
        started = datetime.now(UTC)
        machine_before = _machine()
        rows: list[str] = []
        notes: list[str] = []
        try:
            if "upload" in parts:
                rows += self._upload(tmp / "upload", options["runs"], notes)
            if "list" in parts:
                rows += self._list(tmp / "list", options["studies"], options["requests"], notes)
            if "ingest" in parts:
                rows += self._ingest(tmp / "ingest", options["rounds"], notes)
            if "protocol" in parts:
                rows += self._protocol(tmp / "protocol", options["runs"], notes)
        finally:
            if not options["keep"]:
                subprocess.run(["rm", "-rf", str(tmp)], check=False)
        report = self._report(rows, notes, started, machine_before, options)
        self.stdout.write(report)
        if not options["no_write"]:
            _append_to_portal_section(report)
            self.stdout.write(f"appended to the Portal section of {RESULTS.relative_to(ROOT)}")

    # -- 1 ---------------------------------------------------------------------------------

    def _upload(self, folder: Path, runs: int, notes: list[str]) -> list[str]:
        self.stdout.write("part 1: upload -> graded (embedded mode)")
        stack = Stack(folder / "var")
        try:
            stack.manage("migrate", "--noinput", "-v", "0")
            stack.create_user()
            stack.start_server()
            stack.start_worker()
            warm = _write_phantom(
                folder / "warm", seed=900, n_slices=6, matrix=(384, 384), tag="warm"
            )
            self._graded_seconds(stack, warm)
            times = []
            for run in range(runs):
                files = _write_phantom(
                    folder / f"run{run}", seed=901 + run, n_slices=20, matrix=(384, 384), tag="run"
                )
                seconds, upload_s = self._graded_seconds(stack, files)
                times.append(seconds)
                self.stdout.write(f"  run {run + 1}: {seconds:.2f} s (upload {upload_s:.2f} s)")
            timings = stack.manage(
                "shell",
                "-c",
                (
                    "import json; from grading.models import Analysis\n"
                    "print(json.dumps([a.timings for a in Analysis.objects.order_by('id')]))"
                ),
            )
            last = json.loads(timings.strip().splitlines()[-1])[-1]
            notes.append(
                "Stages of the last timed analysis (worker side): "
                + ", ".join(f"{k} {v:.2f} s" for k, v in last.items() if isinstance(v, int | float))
            )
        finally:
            stack.stop_all()
        median = statistics.median(times)
        return [
            f"| 20-slice bilateral study (384x384), upload start -> `done`, warm worker, "
            f"median of {runs} | {median:.2f} s (runs: "
            + ", ".join(f"{t:.2f}" for t in times)
            + ") | < 10 s | "
            + ("met" if median < 10 else "**not met**")
            + " |"
        ]

    def _graded_seconds(self, stack: Stack, files: list[Path]) -> tuple[float, float]:
        start = time.perf_counter()
        code, body, upload_s = stack.curl_upload(files)
        if code != 201:
            raise RuntimeError(f"upload failed: {code} {body}")
        study_id = body["studies"][0]["id"]
        # The embedded database itself is watched (every 20 ms, no CPU taken from the
        # worker): polling the API that often would cost the worker a share of the cores.
        db = sqlite3.connect(stack.var_dir / "db.sqlite3", timeout=30)
        try:
            while True:
                row = db.execute(
                    "SELECT status, error FROM grading_study WHERE id = ?", [study_id]
                ).fetchone()
                if row and row[0] in ("done", "failed"):
                    if row[0] == "failed":
                        raise RuntimeError(f"analysis failed: {row[1]}")
                    return time.perf_counter() - start, upload_s
                if time.perf_counter() - start > 600:
                    raise RuntimeError("not graded after 600 s")
                time.sleep(0.02)
        finally:
            db.close()

    # -- 4 ---------------------------------------------------------------------------------

    def _protocol(self, folder: Path, runs: int, notes: list[str]) -> list[str]:
        """A hip protocol study of 3 series, 60 slices (coronal T1, coronal STIR, axial T1
        as one Enhanced MR file) from upload to `done`: every series classified, the
        coronal and axial T1 graded, the STIR kept with its reason."""
        from grading.dicom.protocol_writer import SeriesPlan, write_protocol_study
        from grading.engine.phantoms.volume import make_volume_phantom

        self.stdout.write("part 4: hip protocol study (3 series, 60 slices) upload -> graded")
        plans = (
            SeriesPlan("COR T1 TSE", "coronal", "T1", 20, 4.0),
            SeriesPlan("COR STIR", "coronal", "STIR", 20, 4.0),
            SeriesPlan("AX T1 TSE", "axial", "T1", 20, 4.0, enhanced=True),
        )
        stack = Stack(folder / "var")
        times: list[float] = []
        try:
            stack.manage("migrate", "--noinput", "-v", "0")
            stack.create_user()
            stack.start_server()
            stack.start_worker()
            warm = _write_phantom(
                folder / "warm", seed=900, n_slices=6, matrix=(384, 384), tag="warm-protocol"
            )
            self._graded_seconds(stack, warm)
            for run in range(runs):
                written = write_protocol_study(
                    make_volume_phantom(960 + run),
                    folder / f"run{run}",
                    plans=plans,
                    patient_id=f"BENCH-PROTOCOL-{run}",
                )
                files = [p for s in written for p in s.paths]
                seconds, upload_s = self._graded_seconds(stack, files)
                times.append(seconds)
                self.stdout.write(f"  run {run + 1}: {seconds:.2f} s (upload {upload_s:.2f} s)")
        finally:
            stack.stop_all()
        median = statistics.median(times)
        notes.append(
            "Protocol study: 41 files (coronal T1 and STIR as 20 single-frame files each, the "
            "axial T1 as one Legacy Converted Enhanced MR file of 20 frames, 0.9 mm pixels); "
            "the coronal and axial T1 are graded (40 slices), the STIR is classified and kept."
        )
        return [
            f"| hip protocol study, 3 series / 60 slices (one Enhanced MR), upload start -> "
            f"`done`, warm worker, median of {runs} | {median:.2f} s (runs: "
            + ", ".join(f"{t:.2f}" for t in times)
            + ") | < 10 s | "
            + ("met" if median < 10 else "**not met**")
            + " |"
        ]

    # -- 2 ---------------------------------------------------------------------------------

    def _list(self, folder: Path, n: int, per_variant: int, notes: list[str]) -> list[str]:
        self.stdout.write(f"part 2: study list with {n} studies")
        stack = Stack(folder / "var")
        try:
            stack.manage("migrate", "--noinput", "-v", "0")
            stack.create_user()
            out = stack.manage("shell", "-c", POPULATE.format(n=n))
            info = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT"))[7:])
            stack.start_server()
            conn = stack.connection()
            variants = {
                "plain": "/api/studies/",
                "status": "/api/studies/?status=done",
                "grade": "/api/studies/?grade=severe",
                "search": "/api/studies/?search=PATIENT%2042",
                "ordering+page": "/api/studies/?ordering=-study_date&page=5",
                "date range": "/api/studies/?date_from=2021-01-01&date_to=2021-12-31",
            }
            for path in variants.values():
                for _ in range(5):
                    stack.get_json(conn, path)
            samples: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(per_variant):
                for name, path in variants.items():
                    t = time.perf_counter()
                    code, _ = stack.get_json(conn, path)
                    samples[name].append((time.perf_counter() - t) * 1000)
                    if code != 200:
                        raise RuntimeError(f"{path}: HTTP {code}")
        finally:
            stack.stop_all()
        every = [v for values in samples.values() for v in values]
        p95 = _percentile(every, 0.95)
        detail = "; ".join(
            f"{k} p50 {statistics.median(v):.0f} / p95 {_percentile(v, 0.95):.0f}"
            for k, v in samples.items()
        )
        notes.append(
            f"Study list per variant (ms): {detail}. One list request = "
            f"{info['queries']} SQL queries ({info['count']} studies visible)."
        )
        return [
            f"| `GET /api/studies/` with {n} studies, {len(every)} requests over HTTP "
            f"(6 filter/ordering variants) | p95 {p95:.0f} ms, p50 "
            f"{statistics.median(every):.0f} ms, max {max(every):.0f} ms | p95 < 100 ms | "
            + ("met" if p95 < 100 else "**not met**")
            + " |"
        ]

    # -- 3 ---------------------------------------------------------------------------------

    def _ingest(self, folder: Path, rounds: int, notes: list[str]) -> list[str]:
        self.stdout.write("part 3: zip ingest vs Orthanc")
        orthanc = Orthanc(folder / "orthanc")
        archives = []
        for r in range(rounds):
            paths = _write_phantom(
                folder / f"files{r}",
                seed=950,
                n_slices=20,
                matrix=(256, 512),
                copies=10,
                tag=f"ingest{r}",
            )
            # Plus one Enhanced MR series: a single multi-frame file of 20 frames.
            paths.append(
                _write_enhanced(
                    folder / f"files{r}" / "enhanced",
                    _write_phantom(
                        folder / f"classic{r}",
                        seed=952,
                        n_slices=20,
                        matrix=(256, 512),
                        tag=f"ingest-enhanced{r}",
                    ),
                    tag=f"ingest-enhanced{r}",
                )
            )
            archive = folder / f"round{r}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
                for p in paths:
                    z.write(p, p.relative_to(folder / f"files{r}"))
            archives.append((archive, len(paths), sum(p.stat().st_size for p in paths)))
        ours: list[tuple[float, float]] = []
        theirs: list[tuple[float, float]] = []
        stack = Stack(folder / "var")
        try:
            stack.manage("migrate", "--noinput", "-v", "0")
            stack.create_user()
            stack.start_server()  # no worker: the analyses wait, so they take no CPU
            pid = stack.processes["daphne"].pid
            # A warm server, as in use: one earlier upload (20 files) before the timings.
            warm = _write_phantom(
                folder / "warm", seed=951, n_slices=20, matrix=(256, 512), tag="ingest-warm"
            )
            warm_zip = folder / "warm.zip"
            with zipfile.ZipFile(warm_zip, "w", zipfile.ZIP_DEFLATED) as z:
                for p in warm:
                    z.write(p, p.relative_to(folder / "warm"))
            code, body, _ = stack.curl_upload([warm_zip])
            if code != 201:
                raise RuntimeError(f"warm-up upload: {code} {str(body)[:300]}")
            for r, (archive, count, _size) in enumerate(archives):
                order = ("ours", "orthanc") if r % 2 == 0 else ("orthanc", "ours")
                for who in order:
                    if who == "ours":
                        cpu0 = cpu_seconds(pid)
                        code, body, seconds = stack.curl_upload([archive])
                        cpu = cpu_seconds(pid) - cpu0
                        if code != 201 or body.get("stored") != count:
                            raise RuntimeError(f"portal ingest: {code} {str(body)[:300]}")
                        ours.append((seconds, cpu))
                        server = [x for x in stack.log("daphne").splitlines() if "upload of" in x]
                        if server:
                            self.stdout.write(f"    server: {server[-1].split(': ', 1)[-1]}")
                    elif orthanc.available:
                        orthanc.start()
                        try:
                            cpu0 = cpu_seconds(orthanc.process.pid)
                            code, seconds, stored = orthanc.post_zip(archive)
                            cpu = cpu_seconds(orthanc.process.pid) - cpu0
                        finally:
                            orthanc.stop()
                        if code != 200 or stored != count:
                            raise RuntimeError(f"Orthanc: HTTP {code}, {stored} stored")
                        theirs.append((seconds, cpu))
                    self.stdout.write(
                        f"  round {r + 1} {who}: {(ours if who == 'ours' else theirs)[-1]}"
                    )
        finally:
            stack.stop_all()
            orthanc.stop()
        count, size = archives[0][1], archives[0][2]
        zip_mb = archives[0][0].stat().st_size / 1e6

        def fmt(results: list[tuple[float, float]]) -> str:
            rates = [count / s for s, _ in results]
            return (
                f"{statistics.median(rates):.0f} files/s (runs: "
                + ", ".join(f"{x:.0f}" for x in rates)
                + "), server CPU (process tree) "
                + ", ".join(f"{c:.1f}" for _, c in results)
                + " s"
            )

        rows = [
            f"| zip ingest, {count} MR files, one of them an Enhanced MR of 20 frames "
            f"({size / 1e6:.0f} MB, zip {zip_mb:.0f} MB), "
            f"`POST /api/uploads/` | {fmt(ours)} | >= Orthanc | "
        ]
        if theirs:
            ok = statistics.median([count / s for s, _ in ours]) >= statistics.median(
                [count / s for s, _ in theirs]
            )
            rows[0] += ("met" if ok else "**not met**") + " |"
            rows.append(
                f"| same zip, Orthanc `POST /instances` ({orthanc.version()}) | "
                f"{fmt(theirs)} | (reference) | |"
            )
        else:
            rows[0] += "Orthanc not installed |"
            notes.append("Orthanc was not installed (apt-get install orthanc).")
        return rows

    # -- report ----------------------------------------------------------------------------

    def _report(
        self,
        rows: list[str],
        notes: list[str],
        started: datetime,
        machine: str,
        options: dict[str, Any],
    ) -> str:
        command = "python manage.py bench_portal" + (
            f" --parts {options['parts']}" if options["parts"] != "upload,list,ingest" else ""
        )
        lines = [
            f"### Portal benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command}` (commit {_commit()}). Machine: {machine}.",
            "",
            "| measure | result | target | |",
            "|---|---|---|---|",
            *rows,
            "",
            *[f"- {n}" for n in notes],
            "",
        ]
        return "\n".join(lines)
