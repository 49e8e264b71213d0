"""DICOM SEG export (pure builder): segments, algorithm type, references, round trip,
and the IOD verifier (dciodvfy)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import NamedTuple

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from grading.dicom.seg import (
    FEMORAL_HEAD_SEGMENT,
    NECROSIS_SEGMENT,
    AlgorithmInfo,
    build_segmentation,
    segmentation_labelmaps,
)
from tests.conftest import write_phantom_series
from tests.grading_tests.dicom.dciodvfy import dciodvfy

ALGORITHM = AlgorithmInfo(name="ONFH test segmenter", version="onfh-net-1.0+0123abcd")


class Source(NamedTuple):
    datasets: list[Dataset]
    labelmaps: np.ndarray  # (N, H, W) uint8 0/1/2


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    files = write_phantom_series(
        tmp_path_factory.mktemp("seg-source"),
        seed=5,
        n_slices=4,
        matrix=(128, 128),
        necrosis={"right": "moderate", "left": "mild"},
    )
    labelmaps = np.asarray(files.labels, dtype=np.uint8).copy()
    labelmaps[0] = 0  # one slice with no head: its frame is left out of the SEG
    assert set(np.unique(labelmaps[1:])) == {0, 1, 2}
    return Source([pydicom.dcmread(p) for p in files.paths], labelmaps)


def _bytes(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _uids(source: Source) -> list[str]:
    return [str(ds.SOPInstanceUID) for ds in source.datasets]


def test_automatic_segmentation_describes_head_and_necrosis(source):
    seg = build_segmentation(
        source_images=source.datasets, labelmaps=source.labelmaps, algorithm=ALGORITHM, edited=False
    )
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage
    assert seg.SegmentationType == "BINARY"
    head, necrosis = seg.SegmentSequence
    assert (head.SegmentNumber, necrosis.SegmentNumber) == (FEMORAL_HEAD_SEGMENT, NECROSIS_SEGMENT)
    assert head.SegmentLabel == "Femoral head"
    assert necrosis.SegmentLabel == "Necrosis"
    # SNOMED CT: 2812003 head of femur, 6574001 necrosis.
    assert head.SegmentedPropertyTypeCodeSequence[0].CodeValue == "2812003"
    assert head.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
    assert head.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"
    assert necrosis.SegmentedPropertyTypeCodeSequence[0].CodeValue == "6574001"
    assert necrosis.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert necrosis.AnatomicRegionSequence[0].CodeValue == "2812003"
    for segment in seg.SegmentSequence:
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        assert segment.SegmentAlgorithmName == ALGORITHM.name
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert algorithm.AlgorithmName == ALGORITHM.name
        assert algorithm.AlgorithmVersion == ALGORITHM.version
        family = algorithm.AlgorithmFamilyCodeSequence[0]
        # DCM 123110 Artificial Intelligence (CID 7162)
        assert (family.CodeValue, family.CodingSchemeDesignator) == ("123110", "DCM")
    assert "ContentCreatorName" not in seg or not seg.ContentCreatorName


def test_semiautomatic_after_a_person_edited(source):
    seg = build_segmentation(
        source_images=source.datasets,
        labelmaps=source.labelmaps,
        algorithm=ALGORITHM,
        edited=True,
        content_creator_name="Grey^Meredith",
    )
    assert [s.SegmentAlgorithmType for s in seg.SegmentSequence] == ["SEMIAUTOMATIC"] * 2
    assert [s.SegmentAlgorithmName for s in seg.SegmentSequence] == [ALGORITHM.name] * 2
    assert str(seg.ContentCreatorName) == "Grey^Meredith"
    assert "edited" in seg.ContentDescription


def test_references_the_source_series_and_patient(source):
    seg = build_segmentation(
        source_images=source.datasets, labelmaps=source.labelmaps, algorithm=ALGORITHM, edited=False
    )
    first = source.datasets[0]
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.PatientID == first.PatientID
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert seg.SeriesInstanceUID != first.SeriesInstanceUID
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == first.SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == set(
        _uids(source)
    )
    # Each frame points at its source slice; the empty first slice has no frame.
    frame_sources = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in seg.PerFrameFunctionalGroupsSequence
    }
    assert frame_sources == set(_uids(source)[1:])


@pytest.mark.parametrize("edited", [False, True], ids=["automatic", "semiautomatic"])
def test_reloads_with_the_same_masks(source, edited):
    seg = build_segmentation(
        source_images=source.datasets,
        labelmaps=source.labelmaps,
        algorithm=ALGORITHM,
        edited=edited,
        content_creator_name="Grey^Meredith",
    )
    data = _bytes(seg)
    # pydicom dataset -> highdicom, and highdicom's own reader: both pixel-exact.
    from_pydicom = segmentation_labelmaps(pydicom.dcmread(BytesIO(data)), _uids(source))
    assert from_pydicom.dtype == np.uint8
    assert np.array_equal(from_pydicom, source.labelmaps)
    reread = hd.seg.segread(BytesIO(data))
    assert np.array_equal(segmentation_labelmaps(reread, _uids(source)), source.labelmaps)
    # Reordered sources give reordered masks.
    reordered = list(reversed(_uids(source)))
    assert np.array_equal(segmentation_labelmaps(reread, reordered), source.labelmaps[::-1])
    assert reread.get_segment_numbers(segment_label="Necrosis") == [NECROSIS_SEGMENT]


@pytest.mark.parametrize("edited", [False, True], ids=["automatic", "semiautomatic"])
def test_dciodvfy_finds_no_errors(source, tmp_path: Path, edited):
    seg = build_segmentation(
        source_images=source.datasets,
        labelmaps=source.labelmaps,
        algorithm=ALGORITHM,
        edited=edited,
        content_creator_name="Grey^Meredith",
    )
    verdict = dciodvfy(seg, tmp_path, name=f"seg-{'semi' if edited else 'auto'}.dcm")
    assert "Segmentation" in verdict.output
    assert verdict.errors == [], verdict.output


def test_refuses_label_maps_that_do_not_fit(source):
    with pytest.raises(ValueError, match="N, H, W"):
        build_segmentation(
            source_images=source.datasets,
            labelmaps=source.labelmaps[:2],
            algorithm=ALGORITHM,
            edited=False,
        )
    with pytest.raises(ValueError, match="its image is"):
        build_segmentation(
            source_images=source.datasets,
            labelmaps=source.labelmaps[:, :64, :],
            algorithm=ALGORITHM,
            edited=False,
        )
    wrong = source.labelmaps.copy()
    wrong[1, 0, 0] = 3
    with pytest.raises(ValueError, match="only 0"):
        build_segmentation(
            source_images=source.datasets, labelmaps=wrong, algorithm=ALGORITHM, edited=False
        )
    with pytest.raises(ValueError, match="source images"):
        build_segmentation(
            source_images=[], labelmaps=source.labelmaps, algorithm=ALGORITHM, edited=False
        )
