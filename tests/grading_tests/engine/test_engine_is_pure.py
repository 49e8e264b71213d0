"""Nothing under grading/engine or grading/dicom imports Django (checked in a fresh
interpreter, since this test process has Django loaded by pytest-django)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import grading

ROOT = Path(grading.__file__).resolve().parent.parent


def modules_under(package: str) -> list[str]:
    base = ROOT / package.replace(".", "/")
    names = [package]
    for info in pkgutil.walk_packages([str(base)], prefix=f"{package}."):
        names.append(info.name)
    return sorted(names)


def test_engine_and_dicom_modules_import_without_django() -> None:
    names = modules_under("grading.engine") + modules_under("grading.dicom")
    assert "grading.engine.pipeline" in names and "grading.dicom.reader" in names
    script = (
        "import importlib, json, sys\n"
        f"names = {names!r}\n"
        "failed = {}\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed[name] = repr(exc)\n"
        "print(json.dumps({'django': sorted(m for m in sys.modules if m == 'django' "
        "or m.startswith('django.')), 'failed': failed}))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["django"] == [], f"django imported by the engine: {report['django']}"
    # a module that does not import cannot be checked either
    assert report["failed"] == {}
