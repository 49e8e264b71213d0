"""DICOM in and out for the grading engine (pydicom, highdicom; no Django).

Reading: :func:`read_mr_slice` / :func:`read_mr_frames` give
:class:`~grading.engine.types.MRSlice`; :func:`read_many` never stops on a bad
file; :func:`inspect_dicom` reads the header for ingest checks;
:func:`sort_slices` and :func:`slice_spacing_mm` order a series and measure
its slice spacing. Writing: :func:`write_mr_series`, :func:`write_mr_slice`.
Every refusal is a :class:`DicomReadError` whose ``str()`` is one line,
``"<name>: <reason>"``.
"""

from grading.dicom.errors import DicomReadError
from grading.dicom.reader import (
    DicomHeader,
    inspect_dicom,
    iter_dicom_paths,
    read_many,
    read_mr_frames,
    read_mr_slice,
    slice_normal,
    slice_spacing_mm,
    sort_slices,
)
from grading.dicom.writer import WRITABLE_TRANSFER_SYNTAXES, write_mr_series, write_mr_slice

__all__ = [
    "WRITABLE_TRANSFER_SYNTAXES",
    "DicomHeader",
    "DicomReadError",
    "inspect_dicom",
    "iter_dicom_paths",
    "read_many",
    "read_mr_frames",
    "read_mr_slice",
    "slice_normal",
    "slice_spacing_mm",
    "sort_slices",
    "write_mr_series",
    "write_mr_slice",
]
