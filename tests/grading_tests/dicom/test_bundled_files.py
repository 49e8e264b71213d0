"""pydicom's own bundled test files as real-world odd inputs (no download, no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from grading.dicom import DicomReadError, inspect_dicom, read_mr_frames, read_mr_slice
from tests.grading_tests.dicom.helpers import bundled, relabelled_copy

# One MR image, encoded by other toolkits (dcmtk, gdcm, ...) in every way pydicom bundles.
MR_SMALL_VARIANTS = {
    "MR_small.dcm": pydicom.uid.ExplicitVRLittleEndian,
    "MR_small_implicit.dcm": pydicom.uid.ImplicitVRLittleEndian,
    "MR_small_bigendian.dcm": pydicom.uid.ExplicitVRBigEndian,
    "MR_small_expb.dcm": pydicom.uid.ExplicitVRBigEndian,
    # Excess pixel padding and trailing padding:
    "MR_small_padded.dcm": pydicom.uid.ExplicitVRLittleEndian,
    "MR_small_RLE.dcm": pydicom.uid.RLELossless,
    "MR_small_jpeg_ls_lossless.dcm": pydicom.uid.JPEGLSLossless,
    "MR_small_jp2klossless.dcm": pydicom.uid.JPEG2000Lossless,
}


@pytest.fixture(scope="module")
def mr_small_pixels() -> np.ndarray:
    return np.asarray(pydicom.dcmread(bundled("MR_small.dcm")).pixel_array)


@pytest.mark.filterwarnings("ignore:The pixel data is 8320 bytes long:UserWarning")
@pytest.mark.parametrize(("name", "syntax"), MR_SMALL_VARIANTS.items())
def test_mr_small_in_every_bundled_encoding(
    name: str, syntax: pydicom.uid.UID, mr_small_pixels: np.ndarray
) -> None:
    path = bundled(name)
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax

    mr_slice = read_mr_slice(path)

    assert mr_slice.pixels.dtype == np.float32
    assert mr_slice.shape == (64, 64)
    np.testing.assert_array_equal(mr_slice.pixels, mr_small_pixels)  # signed 16-bit, lossless
    assert mr_slice.pixel_spacing_mm == (0.3125, 0.3125)
    assert mr_slice.slice_thickness_mm == pytest.approx(0.8)
    assert mr_slice.spacing_between_slices_mm is None
    assert mr_slice.image_position == pytest.approx((-83.9063, -91.2, 6.6406))
    assert mr_slice.image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert mr_slice.laterality is None  # Laterality is present but empty
    assert mr_slice.instance_number == 1
    assert mr_slice.study_instance_uid == "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
    assert mr_slice.series_instance_uid == "1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457"
    assert mr_slice.sop_instance_uid == "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
    assert mr_slice.source == str(path)


def test_mr_with_12_bits_stored_of_16(tmp_path: Path) -> None:
    path = bundled("examples_overlay.dcm")  # MR, 12 bits stored, unsigned, with an overlay
    ds = pydicom.dcmread(path)
    assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 12, 0)

    mr_slice = read_mr_slice(path)

    assert mr_slice.shape == (300, 484)
    np.testing.assert_array_equal(mr_slice.pixels, ds.pixel_array)
    assert mr_slice.pixel_spacing_mm == pytest.approx((0.72314049586777, 0.72314049586777))
    assert mr_slice.slice_thickness_mm == 4.0


# Greyscale images from other modalities whose compressed pixel data came from other
# encoders: relabelled as MR (header only, pixel data untouched) to exercise the decoders
# on streams we did not write ourselves.
FOREIGN_CODESTREAMS = {
    "JPGExtended.dcm": pydicom.uid.JPEGExtended12Bit,  # JPEG process 2/4, 12-bit
    "JPEG2000.dcm": pydicom.uid.JPEG2000,  # lossy JPEG 2000
    "J2K_pixelrep_mismatch.dcm": pydicom.uid.JPEG2000Lossless,  # header says signed, stream not
    "JPEGLSNearLossless_16.dcm": pydicom.uid.JPEGLSNearLossless,
    "JPEGLSNearLossless_08.dcm": pydicom.uid.JPEGLSNearLossless,
}


@pytest.mark.parametrize(("name", "syntax"), FOREIGN_CODESTREAMS.items())
def test_foreign_compressed_streams_decode_like_pydicom(
    tmp_path: Path, name: str, syntax: pydicom.uid.UID
) -> None:
    source = bundled(name)
    with pytest.raises(DicomReadError, match="not an MR image"):
        read_mr_frames(source)
    extra: dict[str, object] = {}
    if "PixelSpacing" not in pydicom.dcmread(source, stop_before_pixels=True):
        extra["PixelSpacing"] = [1.0, 1.0]
    copy = relabelled_copy(source, tmp_path / name, Modality="MR", **extra)
    expected = pydicom.dcmread(copy)
    assert expected.file_meta.TransferSyntaxUID == syntax
    reference = expected.pixel_array
    if "RescaleSlope" in expected:
        reference = reference * float(expected.RescaleSlope) + float(expected.RescaleIntercept)
    frames = int(expected.get("NumberOfFrames", 1) or 1)
    reference = reference.reshape(frames, *reference.shape[-2:])

    slices = read_mr_frames(copy)

    assert len(slices) == frames
    for mr_slice, expected_frame in zip(slices, reference, strict=True):
        np.testing.assert_array_equal(mr_slice.pixels, expected_frame.astype(np.float32))


REFUSED = {
    "CT_small.dcm": "not an MR image (Modality 'CT')",
    "JPEG-lossy.dcm": "not an MR image (Modality 'NM')",
    "rtdose.dcm": "not an MR image (Modality 'RTDOSE')",
    "SC_rgb_jpeg.dcm": "not an MR image (Modality 'OT')",
    "SC_rgb_jpeg_app14_dcmd.dcm": "not an MR image (no Modality, SOP Class 'Secondary Capture",
    "examples_ybr_color.dcm": "not an MR image (Modality 'US')",
    "reportsi.dcm": "not an image: no pixel data (SOP Class 'Basic Text SR Storage')",
    "rtplan.dcm": "not an image: no pixel data (SOP Class 'RT Plan Storage')",
    "ExplVR_LitEndNoMeta.dcm": "not an image: no pixel data",  # no preamble, read with force
    "MR_truncated.dcm": "truncated DICOM file (PixelData has 8130 of 8192 bytes)",
    "zipMR.gz": "not a DICOM file",
    "README.txt": "not a DICOM file",
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "reason"), REFUSED.items())
def test_bundled_files_that_are_not_gradable_mr_are_refused(name: str, reason: str) -> None:
    path = bundled(name)
    with pytest.raises(DicomReadError) as caught:
        read_mr_slice(path, name=name)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: {reason}")


def test_inspect_bundled_mr_header() -> None:
    header = inspect_dicom(bundled("MR_small_RLE.dcm"))
    assert header.modality == "MR" and header.is_mr
    assert header.patient_name == "CompressedSamples^MR1"
    assert header.patient_id == "4MR1"
    assert header.patient_sex == "F"
    assert header.study_date == "20040826"
    assert (header.rows, header.columns) == (64, 64)
    assert header.number_of_frames == 1
    assert header.transfer_syntax_uid == pydicom.uid.RLELossless
    assert header.series_number == 1 and header.instance_number == 1
    assert not inspect_dicom(bundled("CT_small.dcm")).is_mr
