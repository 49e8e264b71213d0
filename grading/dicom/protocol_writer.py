"""Write a full hip protocol study from the volume phantom: each series with its sequence's
header (so that :mod:`grading.dicom.protocol` can tell the weighting), one of them as a
Legacy Converted Enhanced MR multi-frame file (highdicom).

The default protocol: coronal T1, coronal STIR, axial T1 and sagittal T1 of the right
hip (the sagittal one multi-frame), about 60 slices in all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.uid
from pydicom.valuerep import DSfloat

from grading.dicom.writer import write_mr_series
from grading.engine.phantoms.volume import PlaneSlices, VolumePhantom, slice_volume
from grading.engine.weighting import GRADED_PLANES

__all__ = [
    "SEQUENCE_HEADERS",
    "DEFAULT_PROTOCOL",
    "ProtocolSeries",
    "SeriesPlan",
    "write_protocol_study",
]

# What a scanner writes for each phantom weighting (Siemens-like names).
SEQUENCE_HEADERS: dict[str, dict[str, Any]] = {
    "T1": {
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "",
        "RepetitionTime": 550.0,
        "EchoTime": 12.0,
        "SequenceName": "*tse2d1_3",
    },
    "T2": {
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "",
        "RepetitionTime": 4200.0,
        "EchoTime": 95.0,
        "SequenceName": "*tse2d1_15",
    },
    "PD": {
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "",
        "RepetitionTime": 3000.0,
        "EchoTime": 25.0,
        "SequenceName": "*tse2d1_9",
    },
    "STIR": {
        "ScanningSequence": ["SE", "IR"],
        "SequenceVariant": ["SK", "SP", "MP"],
        "ScanOptions": "IR",
        "RepetitionTime": 5200.0,
        "EchoTime": 40.0,
        "InversionTime": 150.0,
        "SequenceName": "*tir2d1_13",
    },
    "T2FS": {
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "ScanOptions": "FS",
        "RepetitionTime": 4000.0,
        "EchoTime": 70.0,
        "SequenceName": "*tse2d1_13",
    },
}


@dataclass(frozen=True)
class SeriesPlan:
    """One series: ``plane``, ``weighting`` (a :data:`SEQUENCE_HEADERS` key),
    slices, their spacing and pixel size in mm, and ``enhanced``: written as one
    Legacy Converted Enhanced MR file. ``side``: for a sagittal series, the hip."""

    description: str
    plane: str
    weighting: str
    count: int
    spacing_mm: float
    pixel_mm: float = 0.9
    enhanced: bool = False
    side: str = "right"


DEFAULT_PROTOCOL: tuple[SeriesPlan, ...] = (
    SeriesPlan("COR T1 TSE", "coronal", "T1", 16, 4.0),
    SeriesPlan("COR STIR", "coronal", "STIR", 16, 4.0),
    SeriesPlan("AX T1 TSE", "axial", "T1", 16, 4.0),
    SeriesPlan("SAG T1 TSE RIGHT", "sagittal", "T1", 14, 4.0, enhanced=True),
)


@dataclass
class ProtocolSeries:
    plan: SeriesPlan
    series_instance_uid: str
    paths: list[Path]
    slices: PlaneSlices = field(repr=False)


def _fov(plane: str) -> tuple[float, float]:
    return {"axial": (300.0, 200.0), "coronal": (300.0, 170.0), "sagittal": (200.0, 170.0)}[plane]


def _patch_headers(paths: list[Path], weighting: str) -> None:
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword, value in SEQUENCE_HEADERS[weighting].items():
            if isinstance(value, float):
                value = DSfloat(value, auto_format=True)
            setattr(ds, keyword, value)
        ds.ManufacturerModelName = f"Synthetic {weighting} hip"
        ds.save_as(path, enforce_file_format=True)


def _to_enhanced(paths: list[Path], plan: SeriesPlan, series_uid: str, number: int) -> Path:
    """Replace the single-frame files by one Legacy Converted Enhanced MR file."""
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    legacy = [pydicom.dcmread(p) for p in paths]
    # highdicom copies the MR attributes into frame content; legacy files need
    # a frame of reference and positions, which the writer gives.
    enhanced = LegacyConvertedEnhancedMRImage(
        legacy_datasets=legacy,
        series_instance_uid=series_uid,
        series_number=number,
        sop_instance_uid=pydicom.uid.generate_uid(entropy_srcs=[series_uid, "enhanced"]),
        instance_number=1,
    )
    for key, value in SEQUENCE_HEADERS[plan.weighting].items():
        if key in ("ScanningSequence", "SequenceVariant", "ScanOptions", "SequenceName"):
            setattr(enhanced, key, value)
    out = paths[0].parent / f"{number:03d}_enhanced.dcm"
    enhanced.save_as(out, enforce_file_format=True)
    for path in paths:
        path.unlink()
    return out


def write_protocol_study(
    phantom: VolumePhantom,
    out_dir: Path,
    *,
    plans: tuple[SeriesPlan, ...] = DEFAULT_PROTOCOL,
    patient_id: str = "PHANTOM-PROTOCOL",
    study_date: str = "20260101",
    offset_mm: float = 1.0,
) -> list[ProtocolSeries]:
    """Write every series of ``plans`` under ``out_dir/<number>_<plane>_<weighting>/`` and
    ``out_dir/truth.json`` (the per-hip truth of the volume). ``offset_mm`` moves the
    slices off the head centres (a real mid slice seldom passes through one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid = pydicom.uid.generate_uid(entropy_srcs=[patient_id, str(phantom.seed), "study"])
    images = {w: phantom.render(w) for w in sorted({p.weighting for p in plans})}
    written: list[ProtocolSeries] = []
    for number, plan in enumerate(plans, start=1):
        hip = next(h for h in phantom.hips if h.side == plan.side)
        centre = (0.0, float(hip.centre_mm[1]), 0.0) if plan.plane != "sagittal" else hip.centre_mm
        slices = slice_volume(
            phantom,
            images[plan.weighting],
            plan.plane,
            centre_mm=centre,
            count=plan.count,
            spacing_mm=plan.spacing_mm,
            field_of_view_mm=_fov(plan.plane),
            pixel_mm=plan.pixel_mm,
            offset_mm=offset_mm,
        )
        series_uid = pydicom.uid.generate_uid(entropy_srcs=[study_uid, str(number)])
        folder = out_dir / f"{number:02d}_{plan.plane}_{plan.weighting}"
        paths = write_mr_series(
            np.round(slices.images),
            folder,
            pixel_spacing_mm=slices.pixel_spacing_mm,
            slice_thickness_mm=plan.spacing_mm,
            spacing_between_slices_mm=plan.spacing_mm,
            image_orientation=slices.orientation,
            first_position=slices.first_position_mm,
            patient_name="PHANTOM^PROTOCOL",
            patient_id=patient_id,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            series_description=plan.description,
            series_number=number,
            study_date=study_date,
            laterality=("R" if plan.side == "right" else "L") if plan.plane == "sagittal" else None,
        )
        _patch_headers(paths, plan.weighting)
        if plan.enhanced:
            paths = [_to_enhanced(paths, plan, series_uid, number)]
        written.append(ProtocolSeries(plan, series_uid, paths, slices))
    truth = {
        "study_instance_uid": study_uid,
        "seed": phantom.seed,
        "hips": [t.as_dict() for t in phantom.truth],
        "series": [
            {
                "series_instance_uid": s.series_instance_uid,
                "description": s.plan.description,
                "plane": s.plan.plane,
                "weighting": s.plan.weighting,
                "enhanced": s.plan.enhanced,
                "slices": s.plan.count,
                "expected_graded": s.plan.weighting == "T1" and s.plan.plane in GRADED_PLANES,
            }
            for s in written
        ],
    }
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=2))
    return written
