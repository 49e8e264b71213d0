"""What the reader refuses, and how: one ``DicomReadError`` line naming the file and the reason."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from grading.dicom import DicomReadError, inspect_dicom, read_mr_frames, read_mr_slice
from tests.grading_tests.dicom.helpers import WrittenSeries, bundled, relabelled_copy


def _refusal(source: object, name: str | None = None) -> str:
    with pytest.raises(DicomReadError) as caught:
        read_mr_slice(source, name=name)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    assert message == f"{caught.value.name}: {caught.value.reason}"
    return message


@pytest.fixture
def good_file(write_series: Callable[..., WrittenSeries]) -> Path:
    return write_series(shape=(1, 32, 32)).paths[0]


def test_non_dicom_bytes(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Not DICOM.\nSecond line.\n")
    png = tmp_path / "picture.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(png)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))

    for path in (text, png, empty, noise):
        assert _refusal(path) == (
            f"{path}: not a DICOM file (no 'DICM' marker and no DICOM data set found)"
        )
    assert _refusal(b"%PDF-1.7 ...", name="upload.pdf").startswith("upload.pdf: not a DICOM file")


@pytest.mark.parametrize(
    ("keep", "reason"),
    [
        (0.1, "truncated DICOM file ("),
        (0.5, "truncated DICOM file (PixelData has"),
        (-1, "truncated DICOM file (PixelData has"),
    ],
)
def test_truncated_file(tmp_path: Path, good_file: Path, keep: float, reason: str) -> None:
    data = good_file.read_bytes()
    cut = len(data) - 1 if keep == -1 else int(len(data) * keep)
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:cut])
    assert _refusal(path).startswith(f"{path}: {reason}")


def test_truncation_anywhere_is_refused_never_read(tmp_path: Path, good_file: Path) -> None:
    data = good_file.read_bytes()
    for cut in range(0, len(data), 97):
        with pytest.raises(DicomReadError):
            read_mr_slice(data[:cut], name=f"cut{cut}.dcm")


def test_dicom_without_pixels(tmp_path: Path, good_file: Path) -> None:
    no_pixels = relabelled_copy(good_file, tmp_path / "header_only.dcm", PixelData=None)
    assert _refusal(no_pixels) == (
        f"{no_pixels}: no pixel data although it is an image (SOP Class 'MR Image Storage'): "
        "truncated or incomplete file"
    )


def test_ct_is_not_mr(tmp_path: Path, good_file: Path) -> None:
    ct = relabelled_copy(good_file, tmp_path / "ct.dcm", Modality="CT")
    assert _refusal(ct) == f"{ct}: not an MR image (Modality 'CT')"
    assert _refusal(bundled("CT_small.dcm"), name="CT_small.dcm") == (
        "CT_small.dcm: not an MR image (Modality 'CT')"
    )


def test_missing_modality_falls_back_to_the_sop_class(tmp_path: Path, good_file: Path) -> None:
    no_modality = relabelled_copy(good_file, tmp_path / "no_modality.dcm", Modality=None)
    assert read_mr_slice(no_modality).shape == (32, 32)
    secondary = relabelled_copy(
        good_file,
        tmp_path / "sc.dcm",
        Modality=None,
        SOPClassUID=pydicom.uid.SecondaryCaptureImageStorage,
    )
    assert "not an MR image (no Modality, SOP Class 'Secondary Capture" in _refusal(secondary)


def test_rgb_image_is_refused(tmp_path: Path) -> None:
    rgb = relabelled_copy(bundled("SC_rgb_rle.dcm"), tmp_path / "rgb_mr.dcm", Modality="MR")
    assert _refusal(rgb) == (
        f"{rgb}: not a greyscale image (PhotometricInterpretation 'RGB', 3 samples per pixel); "
        "only single-channel MR can be graded"
    )


def test_monochrome1_is_refused(tmp_path: Path, good_file: Path) -> None:
    inverted = relabelled_copy(
        good_file, tmp_path / "m1.dcm", PhotometricInterpretation="MONOCHROME1"
    )
    assert "MONOCHROME1 (inverted grey scale) is not supported" in _refusal(inverted)


def test_missing_pixel_spacing_is_refused(tmp_path: Path, good_file: Path) -> None:
    no_spacing = relabelled_copy(good_file, tmp_path / "nospacing.dcm", PixelSpacing=None)
    assert _refusal(no_spacing) == (
        f"{no_spacing}: no usable PixelSpacing, so areas in mm² cannot be measured"
    )
    zero = relabelled_copy(good_file, tmp_path / "zero.dcm", PixelSpacing=[0, 0.5])
    assert "no usable PixelSpacing" in _refusal(zero)


@pytest.mark.parametrize("spacing", [[1e308, 1e308], [1e-30, 1e-30], [0.5, 45.0]])
def test_an_implausible_pixel_spacing_is_refused(tmp_path: Path, good_file: Path, spacing) -> None:
    # A header error that would make every area and volume wrong (and the head too large
    # or too small to be found): refused with the reason, not graded into "no head".
    absurd = relabelled_copy(good_file, tmp_path / "absurd.dcm", PixelSpacing=spacing)
    assert "is not a plausible MR pixel spacing (0.01 to 20 mm)" in _refusal(absurd)
    fine = relabelled_copy(good_file, tmp_path / "fine.dcm", PixelSpacing=[0.3, 0.3])
    assert read_mr_slice(fine).pixel_spacing_mm == (0.3, 0.3)


def test_undecodable_pixels(tmp_path: Path, good_file: Path) -> None:
    wrong_size = relabelled_copy(good_file, tmp_path / "rows.dcm", Rows=64)  # data is 32 rows
    assert _refusal(wrong_size).startswith(
        f"{wrong_size}: cannot decode pixel data (Explicit VR Little Endian): ValueError: "
    )


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert _refusal(tmp_path / "absent.dcm") == f"{tmp_path / 'absent.dcm'}: file not found"
    assert _refusal(tmp_path) == f"{tmp_path}: is a directory, not a file"


def test_sources_and_names(good_file: Path) -> None:
    data = good_file.read_bytes()
    assert read_mr_slice(data).source == "<bytes>"
    assert read_mr_slice(data, name="upload/a.dcm").source == "upload/a.dcm"
    assert read_mr_slice(io.BytesIO(data)).source == "<stream>"
    with good_file.open("rb") as stream:
        assert read_mr_slice(stream).source == str(good_file)
    assert read_mr_slice(str(good_file)).source == str(good_file)
    assert read_mr_frames(good_file)[0].source == str(good_file)


def test_stream_read_after_a_failed_strict_read_starts_over(good_file: Path) -> None:
    # A DICOM data set without preamble: the strict read fails, the forced read must rewind.
    ds = pydicom.dcmread(good_file)
    ds.preamble = None
    del ds.file_meta
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True)
    assert not buffer.getvalue()[128:132] == b"DICM"
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    mr_slice = read_mr_slice(io.BytesIO(buffer.getvalue()), name="raw")
    np.testing.assert_array_equal(mr_slice.pixels, read_mr_slice(good_file).pixels)


def test_long_reasons_are_cut_to_one_short_line() -> None:
    error = DicomReadError("a\nb.dcm", "x" * 1000 + "\nsecond line")
    assert str(error) == "a b.dcm: " + "x" * 297 + "..."


def test_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(DicomReadError("a.dcm", "not an MR image")))
    assert (error.name, error.reason, str(error)) == (
        "a.dcm",
        "not an MR image",
        "a.dcm: not an MR image",
    )


def test_inspect_refusals(tmp_path: Path, good_file: Path) -> None:
    with pytest.raises(DicomReadError, match=r"^notes: not a DICOM file"):
        inspect_dicom(b"hello", name="notes")
    no_series = relabelled_copy(good_file, tmp_path / "noseries.dcm", SeriesInstanceUID=None)
    with pytest.raises(DicomReadError, match="missing SeriesInstanceUID"):
        inspect_dicom(no_series)


def _deflated(good_file: Path, padding: int) -> bytes:
    """``good_file`` re-encoded as Deflated Explicit VR Little Endian with ``padding``
    zero bytes in a private OB element: a few kB on disk whatever ``padding`` is."""
    ds = pydicom.dcmread(good_file)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    block = ds.private_block(0x0009, "ONFH TEST", create=True)
    block.add_new(0x01, "OB", b"\x00" * padding)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_a_deflate_bomb_is_refused_before_it_is_inflated(
    good_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grading.dicom.reader as reader

    small = _deflated(good_file, 1000)
    assert read_mr_slice(small).pixels.shape == (32, 32)  # a deflated file reads as before
    monkeypatch.setattr(reader, "MAX_INFLATED_BYTES", 4 * 1024**2)
    bomb = _deflated(good_file, 8 * 1024**2)
    assert len(bomb) < 64 * 1024
    assert "inflates to more than 4 MiB (a decompression bomb?)" in _refusal(bomb)
    assert read_mr_slice(small).pixels.shape == (32, 32)
    assert inspect_dicom(small).sop_instance_uid


def test_nan_or_infinite_pixels_are_refused(tmp_path: Path, good_file: Path) -> None:
    # Float pixel data (FloatPixelData) with NaN would be graded into nonsense or fail
    # deep in the engine; it is refused with the reason.
    ds = pydicom.dcmread(good_file)
    values = ds.pixel_array.astype(np.float32)
    values[3, 4] = np.nan
    values[5, 6] = np.inf
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.FloatPixelData = values.tobytes()
    broken = tmp_path / "nan.dcm"
    ds.save_as(broken)
    assert _refusal(broken) == (
        f"{broken}: 2 pixel value(s) are NaN or infinite: not a valid MR image"
    )
    values[3, 4] = values[5, 6] = 7.0
    ds.FloatPixelData = values.tobytes()
    ds.save_as(broken)
    assert np.isfinite(read_mr_slice(broken).pixels).all()
