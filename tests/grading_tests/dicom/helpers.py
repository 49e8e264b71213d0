"""Helpers shared by the DICOM tests: pydicom's bundled files, relabelled copies."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
from pydicom.data import get_testdata_file


def bundled(name: str) -> Path:
    """Path of a test file bundled inside the pydicom wheel (never downloaded)."""
    found = get_testdata_file(name, download=False)
    if found is None:  # pragma: no cover - only if pydicom stops bundling it
        raise FileNotFoundError(f"{name} is not bundled with pydicom {pydicom.__version__}")
    return Path(str(found))


def relabelled_copy(source: Path, target: Path, **attributes: object) -> Path:
    """Copy a DICOM file, changing only the given top-level attributes (pixels untouched)."""
    ds = pydicom.dcmread(source)
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(target)
    return target


class WrittenSeries(NamedTuple):
    volume: np.ndarray  # (N, H, W) values written, stored-value units
    paths: list[Path]
