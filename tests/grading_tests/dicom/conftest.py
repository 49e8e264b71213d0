"""Fixtures for the DICOM tests: small series written with ``write_mr_series``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from grading.dicom import write_mr_series
from tests.grading_tests.dicom.helpers import WrittenSeries


@pytest.fixture
def write_series(tmp_path: Path) -> Callable[..., WrittenSeries]:
    """Write a small random series with ``write_mr_series``; keyword arguments pass through."""
    counter = iter(range(1000))

    def write(
        shape: tuple[int, int, int] = (3, 32, 40),
        *,
        low: int = 0,
        high: int = 4095,
        seed: int = 0,
        **kwargs: object,
    ) -> WrittenSeries:
        rng = np.random.default_rng(seed)
        volume = rng.integers(low, high + 1, size=shape).astype(np.float64)
        volume[0, 0, 0], volume[-1, -1, -1] = low, high  # both ends of the range
        kwargs.setdefault("pixel_spacing_mm", (0.75, 0.8))
        kwargs.setdefault("slice_thickness_mm", 4.0)
        out_dir = tmp_path / f"series_{next(counter)}"
        paths = write_mr_series(volume, out_dir, **kwargs)  # type: ignore[arg-type]
        return WrittenSeries(volume=volume, paths=paths)

    return write
