"""Weighting and plane from the header, and the series decision (docs/grading.md section 6)."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from grading.dicom.protocol import (
    FileProtocol,
    ImagePlane,
    SequenceHeader,
    Weighting,
    classify_weighting,
    plane_of,
    repeated_positions,
    sequence_header,
    series_decision,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (SequenceHeader(("SE",), ("NONE",), (), 550, 12), Weighting.T1),
        (SequenceHeader(("SE",), ("SK",), (), 4000, 95), Weighting.T2),
        (SequenceHeader(("SE",), ("SK",), (), 3000, 25), Weighting.PD),
        (SequenceHeader(("SE", "IR"), ("SK", "SP", "MP"), (), 5000, 40, 150), Weighting.STIR),
        (SequenceHeader(("SE",), (), (), 5000, 40, None, "*tir2d1_13"), Weighting.STIR),
        (SequenceHeader(("SE",), ("SK",), ("FS",), 4000, 70), Weighting.FAT_SATURATED),
        (SequenceHeader(("SE",), (), ("FS",), 550, 12), Weighting.FAT_SATURATED),  # T1 FS
        (
            SequenceHeader(
                ("GR",), (), (), 9, 4, image_type=("DERIVED", "PRIMARY", "DIXON", "WATER")
            ),
            Weighting.FAT_SATURATED,
        ),
        (
            SequenceHeader(("SE",), (), (), 550, 12, contrast_agent="Gadobutrol"),
            Weighting.POST_CONTRAST,
        ),
        (SequenceHeader(("SE",), (), (), 550, 12, contrast_agent="NONE"), Weighting.T1),
        (SequenceHeader(("GR",), (), (), 8, 3.5), Weighting.T1),  # 3-D gradient echo T1
        (SequenceHeader(("GR",), (), (), 600, 20), Weighting.UNKNOWN),  # T2*: not T1
        (SequenceHeader(("IR",), (), (), 2000, 12, 800), Weighting.T1),  # T1 inversion recovery
        (SequenceHeader(series_description="COR STIR"), Weighting.STIR),
        (SequenceHeader(series_description="AX T1 FS POST GAD"), Weighting.POST_CONTRAST),
        (SequenceHeader(series_description="cor pd fs"), Weighting.FAT_SATURATED),
        (SequenceHeader(series_description="SAG T1 TSE"), Weighting.T1),
        (SequenceHeader(series_description="localizer"), Weighting.UNKNOWN),
        # The header wins over a misleading description.
        (
            SequenceHeader(("SE", "IR"), (), (), 5000, 40, 150, series_description="COR T1"),
            Weighting.STIR,
        ),
        (
            SequenceHeader(fat_suppression="FAT", repetition_time_ms=600, echo_time_ms=10),
            Weighting.FAT_SATURATED,
        ),
    ],
)
def test_weighting(header: SequenceHeader, expected: Weighting) -> None:
    weighting, evidence = classify_weighting(header)
    assert weighting == expected, evidence
    assert evidence


def test_plane_of() -> None:
    assert plane_of(AXIAL) == ImagePlane.AXIAL
    assert plane_of(CORONAL) == ImagePlane.CORONAL
    assert plane_of(SAGITTAL) == ImagePlane.SAGITTAL
    assert plane_of((1, 0, 0, 0, 0.94, -0.34)) == ImagePlane.AXIAL  # 20 degrees
    assert plane_of((1, 0, 0, 0, 0.77, -0.64)) == ImagePlane.OBLIQUE  # 40 degrees
    assert plane_of(None) == ImagePlane.UNKNOWN
    assert plane_of((1, 0, 0, 1, 0, 0)) == ImagePlane.UNKNOWN  # degenerate


def test_sequence_header_of_classic_and_enhanced_files() -> None:
    classic = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    header = sequence_header(classic)
    assert header.repetition_time_ms is not None and header.echo_time_ms is not None
    # Enhanced MR keeps the timing in functional groups and the sequence in
    # EchoPulseSequence / MR Modifier.
    enhanced = Dataset()
    enhanced.EchoPulseSequence = "SPIN"
    timing, echo, modifier, frame = Dataset(), Dataset(), Dataset(), Dataset()
    timing.RepetitionTime = 5000
    echo.EffectiveEchoTime = 40
    modifier.InversionRecovery = "YES"
    modifier.InversionTimes = [150]
    frame.MRTimingAndRelatedParametersSequence = [timing]
    frame.MREchoSequence = [echo]
    frame.MRModifierSequence = [modifier]
    enhanced.SharedFunctionalGroupsSequence = [frame]
    header = sequence_header(enhanced)
    assert header.scanning_sequence == ("SE", "IR") and header.inversion_time_ms == 150
    assert classify_weighting(header)[0] == Weighting.STIR
    ds = Dataset()
    ds.ScanningSequence = ["SE", "IR"]
    ds.InversionTime = "150"
    ds.RepetitionTime = "5000"
    ds.EchoTime = "40"
    assert classify_weighting(sequence_header(ds))[0] == Weighting.STIR


def _files(
    n: int, weighting: str = "T1", orientation=AXIAL, spacing=(0.8, 0.8)
) -> list[FileProtocol]:
    return [FileProtocol(weighting, orientation, spacing) for _ in range(n)]


def test_series_decision() -> None:
    ok = series_decision(_files(5))
    assert (ok.graded, ok.weighting, ok.plane, ok.not_graded_reason) == (
        True,
        Weighting.T1,
        ImagePlane.AXIAL,
        None,
    )
    stir = series_decision(_files(5, "STIR"))
    assert not stir.graded and "STIR" in stir.not_graded_reason
    coronal = series_decision(_files(5, orientation=CORONAL))
    assert not coronal.graded and "coronal" in coronal.not_graded_reason
    assert series_decision(
        _files(5, orientation=CORONAL), graded_planes=("axial", "coronal")
    ).graded
    unknown = series_decision(_files(5, "unknown"))
    assert unknown.graded and unknown.flags[0].startswith("weighting_unknown")
    mixed = series_decision(_files(3) + _files(2, "STIR"))
    assert not mixed.graded and "mixed weightings" in mixed.not_graded_reason
    missing = series_decision(_files(3) + _files(1, orientation=None))
    assert not missing.graded and "ImageOrientationPatient" in missing.not_graded_reason
    contradictory = series_decision(_files(3) + _files(1, orientation=CORONAL))
    assert not contradictory.graded and "contradictory" in contradictory.not_graded_reason
    tilted = series_decision(_files(3) + _files(1, orientation=(1, 0, 0, 0, 0.996, -0.087)))
    assert not tilted.graded and "2 degrees" in tilted.not_graded_reason
    spacing = series_decision(_files(3) + _files(1, spacing=(1.0, 1.0)))
    assert not spacing.graded and "pixel spacing" in spacing.not_graded_reason
    assert not series_decision([]).graded


def test_repeated_positions_refuse_a_stack_but_not_separate_images() -> None:
    assert repeated_positions([0.0, 4.0, 8.0, 12.0]) == 0
    assert repeated_positions([0.0, 4.0, 4.0, 8.0, 8.005]) == 2
    assert repeated_positions([3.0, 3.0, 3.0]) == 0  # one position: separate images
    assert repeated_positions([0.0, None, 0.0]) == 0  # unknown: the engine orders otherwise

    def at(positions: list[float]) -> list[FileProtocol]:
        return [FileProtocol("T1", AXIAL, (0.8, 0.8), p) for p in positions]

    repeat = series_decision(at([0.0, 4.0, 4.0, 8.0]))
    assert not repeat.graded
    assert repeat.not_graded_reason.startswith("1 of 4 images lie at the position")
    assert series_decision(at([0.0, 4.0, 8.0])).graded
    assert series_decision(at([5.0, 5.0, 5.0])).graded
