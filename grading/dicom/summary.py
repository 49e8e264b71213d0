"""A secondary-capture summary picture for PACS viewers that cannot show a SEG or an SR:
one slice with the masks burned in and the findings printed on it (highdicom SC)."""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

MANUFACTURER = "ONFH grading portal (research and teaching software, not a medical device)"


def burn_in_text(rgb: npt.NDArray[np.uint8], lines: Sequence[str]) -> npt.NDArray[np.uint8]:
    """``rgb`` ``(H, W, 3)`` with a band below it holding ``lines`` (white on black):
    returns ``(H + band, W, 3)`` uint8, so no pixel of the image is covered."""
    height, width = rgb.shape[:2]
    line_px = 14
    band = line_px * len(lines) + 8
    canvas = Image.new("RGB", (width, height + band), (0, 0, 0))
    canvas.paste(Image.fromarray(rgb, mode="RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        draw.text((4, height + 4 + k * line_px), line, fill=(255, 255, 255))
    return np.asarray(canvas, dtype=np.uint8).copy()


def build_summary_image(
    *,
    source_image: Dataset,
    rgb: npt.NDArray[np.uint8],
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 9903,
    instance_number: int = 1,
) -> Dataset:
    """A Secondary Capture Image (RGB, 8 bit, Explicit VR Little Endian) of ``rgb``
    ``(H, W, 3)`` in the study of ``source_image`` (patient and study copied from it)."""
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source_image,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER[:64],
        patient_orientation=("L", "P"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    sc.SeriesDescription = "ONFH summary (not for diagnosis)"
    sc.BurnedInAnnotation = "YES"
    return sc
