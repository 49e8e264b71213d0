"""Fixtures for the DICOM networking tests: a phantom series (graded by the shipped
network where a test runs the analysis), sites, users and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
import pydicom.uid
import pytest


class Series(NamedTuple):
    paths: list[Path]
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uids: list[str]
    truth: dict


def write_series(
    out_dir: Path,
    *,
    seed: int = 11,
    n_slices: int = 6,
    matrix: tuple[int, int] = (256, 256),
    patient_name: str = "DOE^JANE",
    patient_id: str = "MRN-4711",
    study_date: str = "20240102",
) -> Series:
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    phantom = make_bilateral_series(
        seed, n_slices=n_slices, matrix=matrix, necrosis={"right": "moderate", "left": "none"}
    )
    encoded = (np.floor(phantom.images / 2.0) * 2.0 + (phantom.labels > 0)).astype(np.float32)
    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    paths = write_mr_series(
        encoded,
        out_dir,
        pixel_spacing_mm=phantom.pixel_spacing_mm,
        slice_thickness_mm=phantom.slice_thickness_mm,
        spacing_between_slices_mm=phantom.spacing_between_slices_mm,
        image_orientation=phantom.image_orientation,
        first_position=phantom.first_position,
        patient_name=patient_name,
        patient_id=patient_id,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        study_date=study_date,
    )
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]
    return Series(paths, study_uid, series_uid, uids, phantom.truth)


@pytest.fixture(scope="session")
def mr_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    return write_series(tmp_path_factory.mktemp("interop-series"))
