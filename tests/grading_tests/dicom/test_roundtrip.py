"""Write-and-read round trips: every writable transfer syntax, bit depth, sign and rescale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest

from grading.dicom import (
    WRITABLE_TRANSFER_SYNTAXES,
    read_mr_slice,
    slice_spacing_mm,
    sort_slices,
    write_mr_series,
    write_mr_slice,
)
from grading.dicom.writer import MANUFACTURER
from tests.grading_tests.dicom.helpers import WrittenSeries

# Anything pydicom warns about in our own files (a value too long for its VR, a
# wrong pixel data length, ...) is a bug in the writer.
pytestmark = pytest.mark.filterwarnings("error")

LOSSLESS = [uid for uid in WRITABLE_TRANSFER_SYNTAXES if uid != pydicom.uid.JPEGBaseline8Bit]

# (BitsAllocated, BitsStored, PixelRepresentation)
DEPTHS = [(8, 8, 0), (8, 8, 1), (16, 12, 0), (16, 12, 1), (16, 16, 0), (16, 16, 1)]


def _range(bits_stored: int, signed: int) -> tuple[int, int]:
    if signed:
        return -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    return 0, 2**bits_stored - 1


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda uid: uid.keyword)
@pytest.mark.parametrize("depth", DEPTHS, ids=lambda d: f"{d[0]}a{d[1]}s{'s' if d[2] else 'u'}")
def test_lossless_round_trip_is_exact(
    write_series: Callable[..., WrittenSeries],
    syntax: pydicom.uid.UID,
    depth: tuple[int, int, int],
) -> None:
    allocated, stored, signed = depth
    low, high = _range(stored, signed)
    written = write_series(
        low=low,
        high=high,
        transfer_syntax_uid=syntax,
        bits_allocated=allocated,
        bits_stored=stored,
        pixel_representation=signed,
    )

    for index, path in enumerate(written.paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (allocated, stored, stored - 1)
        assert ds.PixelRepresentation == signed
        mr_slice = read_mr_slice(path)
        assert mr_slice.pixels.dtype == np.float32
        assert mr_slice.shape == written.volume.shape[1:]
        np.testing.assert_array_equal(mr_slice.pixels, written.volume[index])


@pytest.mark.parametrize(
    ("slope", "intercept", "signed"),
    [(0.25, -1024.5, 1), (2.0, 100.0, 0), (1.0, -1000.0, 1), (0.5, 0.0, 0)],
)
@pytest.mark.parametrize(
    "syntax",
    [
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.RLELossless,
    ],
    ids=lambda uid: uid.keyword,
)
def test_rescale_slope_and_intercept_are_applied_exactly(
    tmp_path: Path, slope: float, intercept: float, signed: int, syntax: pydicom.uid.UID
) -> None:
    low, high = _range(16, signed)
    rng = np.random.default_rng(3)
    stored = rng.integers(low, high + 1, size=(2, 32, 36))
    values = stored * slope + intercept  # exactly representable in float32

    paths = write_mr_series(
        values,
        tmp_path,
        pixel_spacing_mm=(1.0, 1.0),
        slice_thickness_mm=3.0,
        transfer_syntax_uid=syntax,
        pixel_representation=signed,
        rescale_slope=slope,
        rescale_intercept=intercept,
    )

    for index, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert float(ds.RescaleSlope) == slope
        assert float(ds.RescaleIntercept) == intercept
        np.testing.assert_array_equal(ds.pixel_array, stored[index])  # stored, not rescaled
        np.testing.assert_array_equal(read_mr_slice(path).pixels, values[index])


def test_identity_rescale_is_not_written(write_series: Callable[..., WrittenSeries]) -> None:
    ds = pydicom.dcmread(write_series().paths[0])
    assert "RescaleSlope" not in ds and "RescaleIntercept" not in ds


def test_values_are_rounded_to_the_nearest_stored_value(tmp_path: Path) -> None:
    image = np.array([[10.3, 10.7], [-0.2, 99.5]] * 16, dtype=np.float64).repeat(16, axis=1)
    path = write_mr_slice(image, tmp_path / "a.dcm", pixel_spacing_mm=(1.0, 1.0))
    pixels = read_mr_slice(path).pixels
    assert pixels[0, 0] == 10.0 and pixels[0, 16] == 11.0 and pixels[1, 0] == 0.0


def test_jpeg_baseline_is_lossy_but_close(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    volume = np.stack([np.clip(40 + 2 * xx + yy + k, 0, 255) for k in range(2)]).astype(float)

    paths = write_mr_series(
        volume,
        tmp_path,
        pixel_spacing_mm=(0.5, 0.5),
        slice_thickness_mm=3.0,
        transfer_syntax_uid=pydicom.uid.JPEGBaseline8Bit,
        bits_allocated=8,
    )

    for index, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
        assert ds.LossyImageCompression == "01"
        assert ds.LossyImageCompressionMethod == "ISO_10918_1"
        pixels = read_mr_slice(path).pixels
        assert np.abs(pixels - volume[index]).max() <= 4.0  # smooth image, quality 75


def test_jpeg_baseline_needs_unsigned_8_bit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JPEG Baseline needs unsigned 8-bit"):
        write_mr_series(
            np.zeros((1, 32, 32)),
            tmp_path,
            pixel_spacing_mm=(1.0, 1.0),
            slice_thickness_mm=1.0,
            transfer_syntax_uid=pydicom.uid.JPEGBaseline8Bit,
        )


def test_jpeg_2000_refuses_images_smaller_than_its_wavelet_levels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JPEG 2000 encoding .* >= 32"):
        write_mr_series(
            np.zeros((1, 16, 64)),
            tmp_path,
            pixel_spacing_mm=(1.0, 1.0),
            slice_thickness_mm=1.0,
            transfer_syntax_uid=pydicom.uid.JPEG2000Lossless,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rescale_slope": 1.0}, "outside 0..255"),  # 300 does not fit 8 bits unsigned
        ({"pixel_representation": 2}, "pixel_representation"),
        ({"bits_allocated": 32}, "bits_allocated"),
        ({"bits_stored": 9}, "bits_stored"),
        ({"rescale_slope": 0.0}, "rescale_slope"),
        ({"transfer_syntax_uid": pydicom.uid.JPEGLosslessSV1}, "cannot write transfer syntax"),
        ({"laterality": "left"}, "laterality"),
        ({"study_date": "2024-01-01"}, "YYYYMMDD"),
    ],
)
def test_writer_refuses_bad_arguments(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    volume = np.full((1, 32, 32), 300.0)
    arguments: dict[str, object] = {"bits_allocated": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        write_mr_series(
            volume,
            tmp_path,
            pixel_spacing_mm=(1.0, 1.0),
            slice_thickness_mm=1.0,
            **arguments,  # type: ignore[arg-type]
        )


def test_writer_refuses_nan_and_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NaN"):
        write_mr_series(
            np.full((1, 4, 4), np.nan), tmp_path, pixel_spacing_mm=(1, 1), slice_thickness_mm=1
        )
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        write_mr_series(np.zeros((4, 4)), tmp_path, pixel_spacing_mm=(1, 1), slice_thickness_mm=1)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        write_mr_slice(np.zeros((1, 4, 4)), tmp_path / "x.dcm", pixel_spacing_mm=(1, 1))


def test_geometry_follows_the_contract(tmp_path: Path) -> None:
    """Slice k at first_position + k * spacing * (row x column); spacing read back."""
    orientation = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)  # coronal: normal is +y (posterior)
    paths = write_mr_series(
        np.zeros((4, 32, 32)),
        tmp_path,
        pixel_spacing_mm=(0.6, 0.7),
        slice_thickness_mm=3.0,
        spacing_between_slices_mm=3.5,
        image_orientation=orientation,
        first_position=(-10.0, 20.0, 30.0),
    )
    slices = [read_mr_slice(path) for path in paths]

    for k, mr_slice in enumerate(slices):
        assert mr_slice.image_position == pytest.approx((-10.0, 20.0 + 3.5 * k, 30.0))
        assert mr_slice.image_orientation == orientation
        assert mr_slice.pixel_spacing_mm == (0.6, 0.7)
        assert mr_slice.slice_thickness_mm == 3.0
        assert mr_slice.spacing_between_slices_mm == 3.5
        assert mr_slice.instance_number == k + 1
        assert pydicom.dcmread(paths[k]).SliceLocation == pytest.approx(20.0 + 3.5 * k)
    assert slice_spacing_mm(sort_slices(slices[::-1])) == pytest.approx(3.5)


def test_spacing_defaults_to_slice_thickness(write_series: Callable[..., WrittenSeries]) -> None:
    written = write_series(slice_thickness_mm=5.0)
    slices = [read_mr_slice(path) for path in written.paths]
    assert [s.image_position for s in slices] == [
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 5.0),
        (0.0, 0.0, 10.0),
    ]
    assert all(s.spacing_between_slices_mm is None for s in slices)
    assert "SpacingBetweenSlices" not in pydicom.dcmread(written.paths[0])


def test_default_orientation_puts_the_patients_right_on_the_image_left(
    write_series: Callable[..., WrittenSeries],
) -> None:
    ds = pydicom.dcmread(write_series().paths[0])
    # Row direction +x is towards the patient's left, so column 0 is the patient's right.
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert list(ds.PatientOrientation) == ["L", "P"]


def test_uids_are_kept_and_reproducible(tmp_path: Path) -> None:
    study, series = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    common = {
        "pixel_spacing_mm": (1.0, 1.0),
        "slice_thickness_mm": 2.0,
        "study_instance_uid": study,
        "series_instance_uid": series,
        "study_date": "20240102",
    }
    first = write_mr_series(np.ones((3, 32, 32)), tmp_path / "a", **common)  # type: ignore[arg-type]
    second = write_mr_series(np.ones((3, 32, 32)), tmp_path / "b", **common)  # type: ignore[arg-type]

    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    slices = [read_mr_slice(path) for path in first]
    assert {s.study_instance_uid for s in slices} == {study}
    assert {s.series_instance_uid for s in slices} == {series}
    assert len({s.sop_instance_uid for s in slices}) == 3
    datasets = [pydicom.dcmread(path) for path in first]
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in datasets)
    assert [p.name for p in first] == ["001_0001.dcm", "001_0002.dcm", "001_0003.dcm"]


def test_write_mr_slice_crop_with_laterality(tmp_path: Path) -> None:
    crop = np.random.default_rng(5).integers(0, 2000, size=(256, 256)).astype(np.float32)
    path = write_mr_slice(
        crop,
        tmp_path / "crops" / "hip_L.dcm",
        pixel_spacing_mm=(0.5, 0.5),
        laterality="L",
        image_position=(1.0, 2.0, 3.0),
        instance_number=7,
    )
    mr_slice = read_mr_slice(path)
    np.testing.assert_array_equal(mr_slice.pixels, crop)
    assert mr_slice.laterality == "L"
    assert mr_slice.image_position == (1.0, 2.0, 3.0)
    assert mr_slice.instance_number == 7
    ds = pydicom.dcmread(path)
    assert ds.ImageLaterality == "L" and "Laterality" not in ds


@pytest.mark.parametrize(("written", "read"), [("R", "R"), ("B", None), ("U", None), (None, None)])
def test_laterality_round_trip(tmp_path: Path, written: str | None, read: str | None) -> None:
    path = write_mr_slice(
        np.zeros((32, 32)), tmp_path / "a.dcm", pixel_spacing_mm=(1, 1), laterality=written
    )
    assert read_mr_slice(path).laterality == read


# Type 1 (must have a value) and type 2 (must be present) attributes of the MR Image IOD
# modules the writer fills (PS3.3 A.4), plus the synthetic-data markers.
TYPE_1 = {
    "SOP Common": ["SOPClassUID", "SOPInstanceUID"],
    "General Study": ["StudyInstanceUID"],
    "General Series": ["Modality", "SeriesInstanceUID"],
    "Frame of Reference": ["FrameOfReferenceUID"],
    "Image Plane": ["PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient"],
    "Image Pixel": [
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PixelData",
    ],
    "MR Image": [
        "ImageType",
        "ScanningSequence",
        "SequenceVariant",
        "MRAcquisitionType",
    ],
}
TYPE_2 = {
    "Patient": ["PatientName", "PatientID", "PatientBirthDate", "PatientSex"],
    "General Study": [
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ],
    "General Series": ["SeriesNumber", "PatientPosition"],
    "Frame of Reference": ["PositionReferenceIndicator"],
    "General Equipment": ["Manufacturer"],
    "General Image": ["InstanceNumber", "PatientOrientation", "ContentDate", "ContentTime"],
    "Image Plane": ["SliceThickness"],
    "MR Image": ["ScanOptions", "RepetitionTime", "EchoTime", "EchoTrainLength"],
}


def test_objects_carry_the_mr_image_iod_attributes(
    write_series: Callable[..., WrittenSeries],
) -> None:
    ds = pydicom.dcmread(write_series(laterality=None).paths[0])

    for module, keywords in TYPE_1.items():
        for keyword in keywords:
            assert keyword in ds and ds[keyword].value not in (None, "", b""), (module, keyword)
    for module, keywords in TYPE_2.items():
        for keyword in keywords:
            assert keyword in ds, (module, keyword)
    assert "Laterality" in ds  # type 2C: hip is paired and no ImageLaterality was sent

    assert ds.SOPClassUID == pydicom.uid.MRImageStorage
    assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.MRImageStorage
    assert ds.Modality == "MR"
    assert ds.Manufacturer == MANUFACTURER == "ONFH-Portal phantom"
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "M"]
    assert (ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType) == ("SE", "NONE", "2D")
    assert float(ds.RepetitionTime) == 500.0 and float(ds.EchoTime) == 10.0
    assert ds.EchoTrainLength == 1
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert ds.BitsAllocated == 16  # the MR Image module's only allowed value
    assert ds.BurnedInAnnotation == "NO"
    assert ds.PatientIdentityRemoved == "YES"
    assert "synthetic" in ds.ImageComments.lower()
    assert "phantom" in ds.DeidentificationMethod.lower()
    assert "WindowCenter" in ds and "WindowWidth" in ds
    # The file meta and preamble make it a conformant Part 10 file.
    assert ds.preamble == b"\x00" * 128
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
