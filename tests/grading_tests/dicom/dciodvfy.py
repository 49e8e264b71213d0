"""Run dicom3tools' ``dciodvfy`` (the IOD verifier) on a DICOM object."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

import pytest
from pydicom.dataset import Dataset


class DciodvfyWarning(UserWarning):
    """A warning ``dciodvfy`` printed (allowed, but shown in pytest's summary)."""


class Verdict(NamedTuple):
    errors: list[str]
    warnings: list[str]
    output: str


def dciodvfy(obj: Dataset | bytes | Path, tmp_path: Path, name: str = "object.dcm") -> Verdict:
    """Verify one object; skips the test when dicom3tools is not installed
    (``make install-system`` installs it). Its warnings are re-emitted as
    :class:`DciodvfyWarning` so that they are listed in the test output."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    if isinstance(obj, Path):
        path = obj
    else:
        path = tmp_path / name
        if isinstance(obj, bytes):
            path.write_bytes(obj)
        else:
            buffer = BytesIO()
            obj.save_as(buffer, enforce_file_format=True)
            path.write_bytes(buffer.getvalue())
    done = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    lines = [line.strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("Error")]
    found = [line for line in lines if line.startswith("Warning")]
    for line in found:
        warnings.warn(f"dciodvfy {name}: {line}", DciodvfyWarning, stacklevel=2)
    print(f"dciodvfy {name}:\n{output}")  # noqa: T201 - shown with -rP / on failure
    return Verdict(errors, found, output)
