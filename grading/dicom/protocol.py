"""Which sequence and plane a series is, from its DICOM header, and whether it can be graded.

:func:`sequence_header` reads what tells a weighting apart (classic MR Image and the
functional groups of Enhanced MR): ScanningSequence, SequenceVariant, ScanOptions,
RepetitionTime, EchoTime, InversionTime, SequenceName, ImageType, ContrastBolusAgent,
SeriesDescription. :func:`classify_weighting` turns it into a :class:`Weighting` with the
evidence, :func:`plane_of` gives the plane from ImageOrientationPatient, and
:func:`series_decision` decides for a whole series (all its files) whether the engine
grades it, and if not, why. Rules and their order: ``docs/grading.md`` section 6.

Pure functions over small value types; pydicom only in :func:`sequence_header`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from grading.engine.measure import SAME_POSITION_MM

__all__ = [
    "FileProtocol",
    "ImagePlane",
    "SequenceHeader",
    "SeriesDecision",
    "Weighting",
    "classify_weighting",
    "plane_of",
    "sequence_header",
    "series_decision",
]


class Weighting(StrEnum):
    T1 = "T1"
    T2 = "T2"
    PD = "PD"
    STIR = "STIR"
    FAT_SATURATED = "fat_saturated"
    POST_CONTRAST = "post_contrast"
    UNKNOWN = "unknown"


class ImagePlane(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"
    OBLIQUE = "oblique"
    UNKNOWN = "unknown"  # no usable ImageOrientationPatient


@dataclass(frozen=True)
class SequenceHeader:
    """The attributes that tell a weighting apart; times in ms, None when absent."""

    scanning_sequence: tuple[str, ...] = ()
    sequence_variant: tuple[str, ...] = ()
    scan_options: tuple[str, ...] = ()
    repetition_time_ms: float | None = None
    echo_time_ms: float | None = None
    inversion_time_ms: float | None = None
    sequence_name: str = ""
    image_type: tuple[str, ...] = ()
    contrast_agent: str = ""
    series_description: str = ""
    fat_suppression: str = ""  # Enhanced MR SpectrallySelectedSuppression
    excitation: str = ""  # Enhanced MR SpectrallySelectedExcitation (WATER: fat not excited)
    acquisition_contrast: str = ""  # Enhanced MR AcquisitionContrast (T1, T2, STIR...)


def _words(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = value.replace("\\", " ").split()
    else:
        try:
            parts = [str(v) for v in value]
        except TypeError:
            parts = [str(value)]
    return tuple(p.strip().upper() for p in parts if str(p).strip())


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str | int | float):
            value = list(value)[0]
        number = float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) else None


def _item(ds: Dataset, *path: str) -> Dataset | None:
    current: Dataset | None = ds
    for keyword in path:
        if current is None:
            return None
        seq = current.get(keyword)
        if not seq:
            return None
        current = seq[0]
    return current


def _grouped(ds: Dataset, group: str, keyword: str) -> Any:
    """``keyword`` of the first frame's ``group`` (per-frame, then shared), else top level."""
    for outer in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        item = _item(ds, outer, group)
        if item is not None and item.get(keyword) not in (None, ""):
            return item.get(keyword)
    return ds.get(keyword)


def sequence_header(ds: Dataset) -> SequenceHeader:
    """The weighting attributes of one data set, classic or enhanced (first frame)."""
    inversion = _number(ds.get("InversionTime"))
    if inversion is None:
        times = _grouped(ds, "MRModifierSequence", "InversionTimes")
        inversion = _number(times)
    scanning = _words(ds.get("ScanningSequence"))
    if not scanning:
        echo = str(ds.get("EchoPulseSequence") or "").upper()
        scanning = {"SPIN": ("SE",), "GRADIENT": ("GR",), "BOTH": ("SE", "GR")}.get(echo, ())
        if str(_grouped(ds, "MRModifierSequence", "InversionRecovery") or "").upper() == "YES":
            scanning = (*scanning, "IR")
    agent = str(ds.get("ContrastBolusAgent") or "").strip()
    if not agent:
        agents = ds.get("ContrastBolusAgentSequence") or ds.get("EnhancedContrastBolusSequence")
        if agents:
            agent = "contrast"
    return SequenceHeader(
        scanning_sequence=scanning,
        sequence_variant=_words(ds.get("SequenceVariant")),
        scan_options=_words(ds.get("ScanOptions")),
        repetition_time_ms=_number(
            ds.get("RepetitionTime")
            or _grouped(ds, "MRTimingAndRelatedParametersSequence", "RepetitionTime")
        ),
        echo_time_ms=_number(
            ds.get("EchoTime") or _grouped(ds, "MREchoSequence", "EffectiveEchoTime")
        ),
        inversion_time_ms=inversion,
        sequence_name=str(ds.get("SequenceName") or ds.get("PulseSequenceName") or "").strip(),
        image_type=_words(ds.get("ImageType")),
        contrast_agent=agent,
        series_description=str(ds.get("SeriesDescription") or "").strip(),
        fat_suppression=str(ds.get("SpectrallySelectedSuppression") or "").strip().upper(),
        excitation=str(ds.get("SpectrallySelectedExcitation") or "").strip().upper(),
        acquisition_contrast=str(ds.get("AcquisitionContrast") or "").strip().upper(),
    )


# Enhanced MR states its weighting (C.8.13.1.1.1, AcquisitionContrast); only the
# defined terms that name one of our weightings; DIFFUSION, FLOW_ENCODED, PERFUSION,
# FLUID_ATTENUATED, TAGGING, TOF, MIXED and UNKNOWN fall through to the other evidence.
_ACQUISITION_CONTRAST = {
    "T1": Weighting.T1,
    "T2": Weighting.T2,
    "T2_STAR": Weighting.T2,
    "PROTON_DENSITY": Weighting.PD,
    "STIR": Weighting.STIR,
}
_NO_AGENT = {"", "NONE", "NO", "N/A", "NA", "0"}
_FAT_OPTIONS = {"FS", "SFS", "FSA_GEMS", "FSS_GEMS", "FSI_GEMS", "SPIR", "SPAIR", "FATSAT"}
_DESCRIPTION_RULES: tuple[tuple[re.Pattern[str], Weighting], ...] = (
    (re.compile(r"\b(STIR|TIRM|IR[-_ ]?FSE)\b"), Weighting.STIR),
    (re.compile(r"(\+C\b|\bC\+|\bGAD|\bGD\b|\bPOST\b|CONTRAST)"), Weighting.POST_CONTRAST),
    (
        re.compile(r"(\bFS\b|FAT[-_ ]?SAT|\bSPAIR\b|\bSPIR\b|\bFATSUP|\bDIXON[-_ ]?W)"),
        Weighting.FAT_SATURATED,
    ),
    (re.compile(r"\bPD\b|PROTON"), Weighting.PD),
    (re.compile(r"\bT2"), Weighting.T2),
    (re.compile(r"\bT1"), Weighting.T1),
)


def _fat_suppressed(h: SequenceHeader) -> str | None:
    if h.fat_suppression and h.fat_suppression not in ("NONE", "WATER"):
        return f"SpectrallySelectedSuppression {h.fat_suppression}"
    if h.excitation == "WATER":
        return "SpectrallySelectedExcitation WATER (water excitation: fat is not excited)"
    options = set(h.scan_options) & _FAT_OPTIONS
    if options:
        return f"ScanOptions {'/'.join(sorted(options))}"
    if "WATER" in h.image_type:
        return "ImageType WATER (Dixon water image)"
    return None


def classify_weighting(h: SequenceHeader) -> tuple[Weighting, str]:
    """The weighting and the evidence for it, header attributes first, the series
    description last.

    Order: a contrast agent -> post-contrast; inversion recovery with a short TI
    (<= 250 ms) -> STIR; a fat-suppression option (or water excitation) -> fat-saturated;
    an Enhanced MR's own AcquisitionContrast (T1, T2, PD, STIR); then TR/TE (spin
    echo: T1 TR < 1000 and TE < 30 ms; PD TR >= 1500 and TE < 50; T2 TR >= 1500 and
    TE >= 60; gradient echo: T1 TE < 10 and TR < 400; inversion recovery with a long TI:
    T1 when TE < 30); then SequenceName (``tir``/``stir``, ``fl``, ``tse``...) and
    finally words of the SeriesDescription; otherwise unknown.
    """
    if h.contrast_agent.upper() not in _NO_AGENT:
        return Weighting.POST_CONTRAST, f"ContrastBolusAgent {h.contrast_agent!r}"
    tr, te, ti = h.repetition_time_ms, h.echo_time_ms, h.inversion_time_ms
    is_ir = "IR" in h.scanning_sequence or "IR" in h.sequence_variant
    name = h.sequence_name.lower()
    if is_ir and ti is not None and ti <= 250:
        return Weighting.STIR, f"inversion recovery with TI {ti:g} ms"
    if "tir" in name and (ti is None or ti <= 250):
        return Weighting.STIR, f"SequenceName {h.sequence_name!r}"
    fat = _fat_suppressed(h)
    if fat:
        return Weighting.FAT_SATURATED, fat
    stated = _ACQUISITION_CONTRAST.get(h.acquisition_contrast)
    if stated is not None:
        return stated, f"AcquisitionContrast {h.acquisition_contrast}"
    if is_ir and ti is not None and te is not None:
        if te < 30:
            return Weighting.T1, f"inversion recovery with TI {ti:g} ms and TE {te:g} ms"
        return Weighting.T2, f"inversion recovery with TI {ti:g} ms and TE {te:g} ms"
    gradient = "GR" in h.scanning_sequence and "SE" not in h.scanning_sequence
    if tr is not None and te is not None:
        timing = f"TR {tr:g} ms, TE {te:g} ms"
        if gradient:
            if te < 10 and tr < 400:
                return Weighting.T1, f"gradient echo, {timing}"
        elif tr < 1000 and te < 30:
            return Weighting.T1, timing
        elif tr >= 1500 and te < 50:
            return Weighting.PD, timing
        elif tr >= 1500 and te >= 60:
            return Weighting.T2, timing
    description = h.series_description.upper()
    for pattern, weighting in _DESCRIPTION_RULES:
        if pattern.search(description):
            return weighting, f"SeriesDescription {h.series_description!r} (no usable timing)"
    return Weighting.UNKNOWN, "no timing, sequence name or description that tells"


def plane_of(orientation: Sequence[float] | None, *, oblique_above_deg: float = 25.0) -> ImagePlane:
    """Plane of an ImageOrientationPatient: the axis the slice normal is closest to,
    oblique when it is more than ``oblique_above_deg`` from every axis; unknown when
    the orientation is missing or degenerate."""
    if orientation is None or len(orientation) != 6:
        return ImagePlane.UNKNOWN
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:], dtype=np.float64)
    normal = np.cross(row, col)
    length = float(np.linalg.norm(normal))
    if not math.isfinite(length) or length < 1e-6:
        return ImagePlane.UNKNOWN
    normal = np.abs(normal / length)
    axis = int(np.argmax(normal))
    if normal[axis] < math.cos(math.radians(oblique_above_deg)):
        return ImagePlane.OBLIQUE
    return (ImagePlane.SAGITTAL, ImagePlane.CORONAL, ImagePlane.AXIAL)[axis]


@dataclass(frozen=True)
class FileProtocol:
    """What the series decision needs of one file (or frame). Spacing in mm."""

    weighting: str
    orientation: tuple[float, ...] | None
    pixel_spacing_mm: tuple[float, float] | None
    position_mm: float | None = None
    """Position along the slice normal (mm), when the header gives it."""


@dataclass(frozen=True)
class SeriesDecision:
    weighting: Weighting
    plane: ImagePlane
    graded: bool
    not_graded_reason: str | None
    flags: tuple[str, ...] = ()


_WHY_NOT: dict[Weighting, str] = {
    Weighting.STIR: "STIR series: fat is dark and oedema bright, the grading method needs T1 "
    "(bright fatty marrow)",
    Weighting.T2: "T2-weighted series: the grading method needs T1 (bright fatty marrow)",
    Weighting.PD: "proton-density series: the grading method needs T1 (bright fatty marrow)",
    Weighting.FAT_SATURATED: "fat-suppressed series: marrow fat is dark, the grading method "
    "needs T1 without fat suppression",
    Weighting.POST_CONTRAST: "post-contrast series: enhancement changes the marrow signal, "
    "the grading method needs T1 before contrast",
}


def repeated_positions(positions: Sequence[float | None]) -> int:
    """How many images share their position along the normal with an earlier image, when
    every position is known and they are not all one position (0 otherwise). A series
    whose images all lie at one position is not a stack but separate images (crops, key
    images): the engine grades each alone (:func:`grading.engine.pipeline.grade_series`)."""
    if len(positions) < 2 or any(p is None for p in positions):
        return 0
    values = sorted(float(p) for p in positions if p is not None)
    if values[-1] - values[0] <= SAME_POSITION_MM:
        return 0
    return sum(1 for a, b in itertools.pairwise(values) if b - a <= SAME_POSITION_MM)


def series_decision(
    files: Sequence[FileProtocol], *, graded_planes: Collection[str] = ("axial",)
) -> SeriesDecision:
    """Whether a series is graded, from all its files.

    Not graded, with a reason: missing or contradictory orientation (files in different
    planes or orientations more than 2 degrees apart), files with different pixel
    spacing, images at a position another image already holds (:func:`repeated_positions`),
    a mixture of weightings, any weighting but T1 (unknown aside), a plane the
    engine does not grade (``graded_planes``). An unknown weighting is graded with the
    flag ``weighting_unknown``, provided the images look like T1 (checked on the pixels
    by the analysis: :func:`grading.engine.weighting.looks_like_t1`).
    """
    if not files:
        return SeriesDecision(
            Weighting.UNKNOWN, ImagePlane.UNKNOWN, False, "the series has no images"
        )
    counts = Counter(f.weighting for f in files)
    weighting = Weighting(counts.most_common(1)[0][0])
    missing = sum(1 for f in files if plane_of(f.orientation) == ImagePlane.UNKNOWN)
    planes = Counter(plane_of(f.orientation) for f in files if f.orientation is not None)
    plane = planes.most_common(1)[0][0] if planes else ImagePlane.UNKNOWN

    def no(reason: str) -> SeriesDecision:
        return SeriesDecision(weighting, plane, False, reason)

    if missing:
        return no(
            f"missing or unusable ImageOrientationPatient on {missing} of {len(files)} images: "
            "the plane and the sides cannot be known"
        )
    if len(planes) > 1:
        listed = ", ".join(f"{p} ({n})" for p, n in planes.most_common())
        return no(f"contradictory orientation: images in several planes ({listed})")
    first = np.asarray(files[0].orientation, dtype=np.float64)
    for f in files[1:]:
        other = np.asarray(f.orientation, dtype=np.float64)
        cosines = [
            float(
                np.dot(first[:3], other[:3])
                / (np.linalg.norm(first[:3]) * np.linalg.norm(other[:3]))
            ),
            float(
                np.dot(first[3:], other[3:])
                / (np.linalg.norm(first[3:]) * np.linalg.norm(other[3:]))
            ),
        ]
        if min(cosines) < math.cos(math.radians(2.0)):
            return no(
                "contradictory orientation: the images' ImageOrientationPatient differ "
                "by more than 2 degrees"
            )
    spacings = {
        (round(f.pixel_spacing_mm[0], 3), round(f.pixel_spacing_mm[1], 3))
        for f in files
        if f.pixel_spacing_mm is not None
    }
    if len(spacings) > 1:
        listed = ", ".join(f"{a:g} x {b:g} mm" for a, b in sorted(spacings))
        return no(f"images with different pixel spacing ({listed}): one series must share one grid")
    repeated = repeated_positions([f.position_mm for f in files])
    if repeated:
        return no(
            f"{repeated} of {len(files)} images lie at the position of another image of the "
            "series (repeated slices, echoes or time points?): a volume needs one image per "
            "position"
        )
    if len(counts) > 1:
        listed = ", ".join(f"{w} ({n})" for w, n in counts.most_common())
        return no(f"mixed weightings in one series: {listed}")
    if weighting in _WHY_NOT:
        return no(_WHY_NOT[weighting])
    if plane.value not in graded_planes:
        supported = " and ".join(sorted(graded_planes))
        return no(f"{plane} series: the engine grades {supported} T1 series only")
    if weighting == Weighting.UNKNOWN:
        return SeriesDecision(
            weighting,
            plane,
            True,
            None,
            (
                "weighting_unknown: the header does not say the weighting; graded because the "
                "marrow is brighter than muscle, as on T1",
            ),
        )
    return SeriesDecision(weighting, plane, True, None)
