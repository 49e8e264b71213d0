"""DICOM Segmentation (SEG) export of a series' label maps, and reading one back.

A label map is ``(H, W)`` uint8 on the source slice's grid: 0 background,
1 femoral head (viable), 2 necrosis (inside the head). The SEG has two BINARY
segments, which overlap:

1. ``Femoral head`` - the whole head, label > 0 (SCT 2812003 Head of femur,
   category SCT 91723000 Anatomical structure);
2. ``Necrosis`` - label == 2 (SCT 6574001 Necrosis, category SCT 49755003
   Morphologically abnormal structure, anatomic region head of femur).

So ``labelmap == head + necrosis`` holds pixel for pixel and
:func:`segmentation_labelmaps` gives back exactly what was written.
The segment algorithm type is AUTOMATIC for the engine's label maps and
SEMIAUTOMATIC once a person edited one (PS3.3 C.8.20.2, Segment Algorithm Type);
the algorithm identification (name, version, family Artificial Intelligence) is
written either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

__all__ = [
    "FEMORAL_HEAD_SEGMENT",
    "NECROSIS_SEGMENT",
    "AlgorithmInfo",
    "build_segmentation",
    "segmentation_labelmaps",
]

FEMORAL_HEAD_SEGMENT = 1
NECROSIS_SEGMENT = 2
MANUFACTURER = "ONFH grading portal"
_MODEL_NAME = "onfh-portal"
_SOFTWARE_VERSION = "onfh-portal 0.1"
_DEVICE_SERIAL = "onfh-portal"


@dataclass(frozen=True)
class AlgorithmInfo:
    """The algorithm that made the label maps (DICOM Algorithm Identification)."""

    name: str  # e.g. "ONFH-Net"
    version: str  # e.g. "onfh-net-1.0+abcd1234"

    def identification(self) -> hd.AlgorithmIdentificationSequence:
        return hd.AlgorithmIdentificationSequence(
            name=self.name,
            family=codes.cid7162.ArtificialIntelligence,
            version=self.version or "unknown",
        )

    @property
    def device_uid(self) -> str:
        """A UID for the algorithm as an SR observer device, stable per name and version."""
        return str(
            pydicom.uid.generate_uid(entropy_srcs=["onfh-algorithm", self.name, self.version])
        )


def _segment_descriptions(
    *, algorithm: AlgorithmInfo, edited: bool
) -> list[hd.seg.SegmentDescription]:
    algorithm_type = (
        hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
        if edited
        else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    )
    return [
        hd.seg.SegmentDescription(
            segment_number=FEMORAL_HEAD_SEGMENT,
            segment_label="Femoral head",
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.HeadOfFemur,
            algorithm_type=algorithm_type,
            algorithm_identification=algorithm.identification(),
            tracking_id="femoral head",
            tracking_uid=str(pydicom.uid.generate_uid()),
        ),
        hd.seg.SegmentDescription(
            segment_number=NECROSIS_SEGMENT,
            segment_label="Necrosis",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Necrosis,
            algorithm_type=algorithm_type,
            algorithm_identification=algorithm.identification(),
            anatomic_regions=[codes.SCT.HeadOfFemur],
            tracking_id="necrosis of the femoral head",
            tracking_uid=str(pydicom.uid.generate_uid()),
        ),
    ]


def _frame_count(source_images: Sequence[Dataset]) -> int:
    """Slices of the source: its images, or the frames of one multi-frame image."""
    if len(source_images) == 1:
        return max(1, int(source_images[0].get("NumberOfFrames", 1) or 1))
    return len(source_images)


def _validated_labelmaps(
    labelmaps: npt.ArrayLike, source_images: Sequence[Dataset]
) -> npt.NDArray[np.uint8]:
    array = np.asarray(labelmaps)
    frames = _frame_count(source_images)
    if array.ndim != 3 or array.shape[0] != frames:
        raise ValueError(
            f"label maps must be (N, H, W) with N = {frames} source frames, got {array.shape}"
        )
    for k, ds in enumerate(source_images):
        if len(source_images) == 1 and frames > 1:
            if array.shape[1:] != (int(ds.Rows), int(ds.Columns)):
                raise ValueError(
                    f"label maps are {array.shape[1:]}, the frames {(ds.Rows, ds.Columns)}"
                )
            break
        if array.shape[1:] != (int(ds.Rows), int(ds.Columns)):
            raise ValueError(
                f"label map {k} is {array.shape[1:]}, its image is {(ds.Rows, ds.Columns)}"
            )
    if array.size and (array.min() < 0 or array.max() > 2):
        raise ValueError("label maps hold only 0 (background), 1 (femoral head), 2 (necrosis)")
    return array.astype(np.uint8)


def build_segmentation(
    *,
    source_images: Sequence[Dataset],
    labelmaps: npt.ArrayLike,
    algorithm: AlgorithmInfo,
    edited: bool,
    content_creator_name: str | None = None,
    series_number: int = 900,
    instance_number: int = 1,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> hd.seg.Segmentation:
    """A BINARY DICOM Segmentation of one MR series.

    ``source_images``: the series' MR datasets (pixel data not needed), slice k of
    ``labelmaps`` lies on ``source_images[k]``; or one multi-frame (Enhanced MR) dataset,
    slice k of ``labelmaps`` on its frame k + 1. ``labelmaps``: ``(N, H, W)`` uint8
    0/1/2. ``edited``: a person changed at least one label map (SEMIAUTOMATIC);
    ``content_creator_name`` (DICOM PN, ``Family^Given``) names that person.
    Frames with no segment pixel are left out (``omit_empty_frames``); reading
    back fills them with zeros.
    """
    if not source_images:
        raise ValueError("a segmentation needs its source images")
    array = _validated_labelmaps(labelmaps, source_images)
    # (N, H, W, S): one binary plane per segment; the segments overlap.
    planes = np.stack([array > 0, array == 2], axis=-1).astype(np.uint8)
    description = (
        "Femoral head and necrosis, edited by a person"
        if edited
        else "Femoral head and necrosis, automatic"
    )
    return hd.seg.Segmentation(
        source_images=list(source_images),
        pixel_array=planes,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segment_descriptions(algorithm=algorithm, edited=edited),
        series_instance_uid=series_instance_uid or str(pydicom.uid.generate_uid()),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or str(pydicom.uid.generate_uid()),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=_MODEL_NAME,
        software_versions=_SOFTWARE_VERSION,
        device_serial_number=_DEVICE_SERIAL,
        content_label="ONFH",
        content_description=description[:64],
        content_creator_name=content_creator_name if edited and content_creator_name else None,
        series_description="ONFH segmentation (research, not for diagnosis)",
    )


def segmentation_labelmaps(
    segmentation: Dataset, source_sop_instance_uids: Sequence[str]
) -> npt.NDArray[np.uint8]:
    """Label maps ``(N, H, W)`` uint8 0/1/2 back from a SEG written by
    :func:`build_segmentation` (a :class:`highdicom.seg.Segmentation` or a pydicom
    dataset of one), in the order of ``source_sop_instance_uids``; a source image
    without a frame gives zeros."""
    seg = (
        segmentation
        if isinstance(segmentation, hd.seg.Segmentation)
        else hd.seg.Segmentation.from_dataset(segmentation, copy=True)
    )
    planes = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=list(source_sop_instance_uids),
        segment_numbers=[FEMORAL_HEAD_SEGMENT, NECROSIS_SEGMENT],
        combine_segments=False,
    )
    head = planes[..., 0] > 0
    necrosis = planes[..., 1] > 0
    labelmaps = head.astype(np.uint8)
    labelmaps[necrosis] = 2
    return labelmaps
