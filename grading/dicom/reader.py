"""Read MR slices from DICOM files into :class:`~grading.engine.types.MRSlice`.

What is read
    Greyscale MR images (Modality ``MR``, or an MR SOP Class when Modality is
    missing) in any transfer syntax pydicom can decode with the installed
    plugins: implicit and explicit VR little endian, explicit VR big endian,
    deflated, RLE Lossless, JPEG baseline / extended / lossless, JPEG-LS and
    JPEG 2000 (pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pylibjpeg-rle,
    pyjpegls, Pillow). Signed and unsigned, 8 to 16 bits stored (and float
    pixel data). Pixels come back as ``(H, W)`` float32 in stored-value units
    after the Modality LUT (RescaleSlope / RescaleIntercept, applied by
    pydicom's :func:`~pydicom.pixels.apply_modality_lut`); no windowing.

What is refused, with :class:`DicomReadError` (one line, ``"<name>: <reason>"``)
    A file that is not DICOM, a DICOM object with no pixel data, a non-MR
    image, a colour or MONOCHROME1 image, an image without a usable
    PixelSpacing (areas in mm² would be meaningless), and a broken, truncated
    or undecodable file.

Multi-frame files
    :func:`read_mr_slice` reads single-frame images only and refuses a file of
    several frames, naming :func:`read_mr_frames`, which reads each frame of a
    multi-frame MR (Enhanced MR, Legacy Converted Enhanced MR, or a classic MR
    object with NumberOfFrames) into its own ``MRSlice`` with the frame's own
    geometry from the functional group sequences. Frames share the file's
    SOPInstanceUID; their ``instance_number`` is the 1-based frame number and
    their ``source`` is ``"<name> [frame k]"``. The portal stores and grades
    instances, so it reads with :func:`read_mr_slice`;
    ``read_many(..., split_frames=True)`` is there for command-line use.

Nothing here imports Django.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.datadict
import pydicom.uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_modality_lut

from grading.dicom.errors import DicomReadError
from grading.engine.types import MRSlice

__all__ = [
    "DicomHeader",
    "DicomReadError",
    "DicomSource",
    "inspect_dicom",
    "iter_dicom_paths",
    "read_many",
    "read_mr_frames",
    "read_mr_slice",
    "slice_normal",
    "slice_spacing_mm",
    "sort_slices",
]

DicomSource = str | os.PathLike[str] | BinaryIO | bytes
"""A file path, an open binary file, or the file's bytes."""

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

MR_SOP_CLASS_UIDS = frozenset(
    {
        pydicom.uid.MRImageStorage,
        pydicom.uid.EnhancedMRImageStorage,
        pydicom.uid.LegacyConvertedEnhancedMRImageStorage,
    }
)
"""MR Image, Enhanced MR Image and Legacy Converted Enhanced MR Image Storage."""


# ---------------------------------------------------------------------------
# Opening files
# ---------------------------------------------------------------------------


def _source_name(source: DicomSource, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, bytes | bytearray | memoryview):
        return "<bytes>"
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    stream_name = getattr(source, "name", None)
    return stream_name if isinstance(stream_name, str) and stream_name else "<stream>"


def _as_readable(source: DicomSource) -> str | os.PathLike[str] | BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    return source


def _rewind(source: str | os.PathLike[str] | BinaryIO, position: int | None) -> None:
    if position is not None and not isinstance(source, str | os.PathLike):
        source.seek(position)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_UNDEFINED_LENGTH = 0xFFFFFFFF


def _truncated_element(ds: Dataset) -> str | None:
    """Describe the last element of ``ds`` if it holds fewer bytes than its header says.

    pydicom stops quietly at the end of a short file; a value cut short is
    the sign that the file was truncated.
    """
    tags = list(ds.keys())
    if not tags:
        return None
    raw = ds.get_item(tags[-1])
    value = getattr(raw, "value", None)
    length = getattr(raw, "length", None)
    if not isinstance(value, bytes) or not isinstance(length, int) or length == _UNDEFINED_LENGTH:
        return None
    if len(value) >= length:
        return None
    keyword = pydicom.datadict.keyword_for_tag(tags[-1]) or str(tags[-1])
    return f"{keyword} has {len(value)} of {length} bytes"


def _infer_missing_transfer_syntax(ds: Dataset) -> None:
    """Give a file without a Transfer Syntax UID (no file meta) the encoding pydicom found.

    Only an uncompressed syntax can be inferred; encapsulated pixel data in such
    a file then fails to decode with a message.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit_vr, little_endian = ds.original_encoding
    if implicit_vr is None or little_endian is None:
        return
    if implicit_vr:
        syntax = pydicom.uid.ImplicitVRLittleEndian
    elif little_endian:
        syntax = pydicom.uid.ExplicitVRLittleEndian
    else:
        syntax = pydicom.uid.ExplicitVRBigEndian
    if meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax


def _open_dataset(source: DicomSource, name: str, *, stop_before_pixels: bool) -> Dataset:
    """Read ``source``, refusing truncated and non-DICOM input (see :func:`_read_dataset`)."""
    ds = _read_dataset(source, name, stop_before_pixels=stop_before_pixels)
    _infer_missing_transfer_syntax(ds)
    meta = getattr(ds, "file_meta", None)
    for part in (meta, ds):
        cut = _truncated_element(part) if part is not None else None
        if cut is not None:
            raise DicomReadError(name, f"truncated DICOM file ({cut})")
    return ds


_FIRST_GROUPS = frozenset({0x0002, 0x0008})


def _starts_like_a_data_set(readable: str | os.PathLike[str] | BinaryIO, start: int | None) -> bool:
    """True when the first element's group is 0002 or 0008, as in a data set without preamble.

    Keeps text, images and other files from being parsed by a forced read.
    """
    if isinstance(readable, str | os.PathLike):
        with open(readable, "rb") as stream:
            head = stream.read(2)
    else:
        head = readable.read(2)
        _rewind(readable, start)
    if len(head) < 2:
        return False
    return int.from_bytes(head, "little") in _FIRST_GROUPS or (
        int.from_bytes(head, "big") in _FIRST_GROUPS
    )


MAX_INFLATED_BYTES = int(os.environ.get("ONFH_MAX_INFLATED_DICOM_BYTES") or 512 * 1024**2)
"""The most a deflated data set (Deflated Explicit VR Little Endian) may inflate to. pydicom
inflates the whole stream in memory before parsing, so a 1.5 MB file of zeros would
take gigabytes: it is measured first, in bounded steps, and refused above this."""

_DEFLATED = "1.2.840.10008.1.2.1.99"


def _inflated_size_check(readable: str | os.PathLike[str] | BinaryIO, name: str) -> None:
    """Refuse a deflated data set that inflates to more than :data:`MAX_INFLATED_BYTES`
    (a decompression bomb), reading its stream in 1 MiB steps; other files pass."""
    if isinstance(readable, str | os.PathLike):
        with open(readable, "rb") as stream:
            _inflated_size_check(stream, name)
        return
    start = readable.tell()
    try:
        try:
            pydicom.filereader.read_preamble(readable, False)
            meta = pydicom.filereader._read_file_meta_info(readable)  # noqa: SLF001
        except Exception:  # noqa: BLE001 - not a file with meta information: not deflated
            return
        if str(meta.get("TransferSyntaxUID", "")) != _DEFLATED:
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while chunk := readable.read(1 << 20):
            pending = chunk
            while pending:
                total += len(inflater.decompress(pending, 1 << 24))
                pending = inflater.unconsumed_tail
                if total > MAX_INFLATED_BYTES:
                    raise DicomReadError(
                        name,
                        f"the deflated data set inflates to more than "
                        f"{MAX_INFLATED_BYTES // 1024**2} MiB (a decompression bomb?): refused",
                    )
            if inflater.eof:
                return
    except zlib.error:
        return  # pydicom reports the broken stream itself
    finally:
        readable.seek(start)


def _read_dataset(source: DicomSource, name: str, *, stop_before_pixels: bool) -> Dataset:
    """``pydicom.dcmread`` with every failure turned into a one-line :class:`DicomReadError`.

    A file without the 128-byte preamble and ``DICM`` marker (older or
    hand-made files) is accepted when a forced read finds a SOP Class UID and
    a SOP Instance UID in it; anything else is "not a DICOM file".
    """
    readable = _as_readable(source)
    start: int | None = None
    if not isinstance(readable, str | os.PathLike):
        try:
            start = readable.tell()
        except (OSError, AttributeError):
            start = None
    try:
        if start is not None or isinstance(readable, str | os.PathLike):
            _inflated_size_check(readable, name)
        try:
            return pydicom.dcmread(readable, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            pass
        _rewind(readable, start)
        looks_like_dicom = False
        if _starts_like_a_data_set(readable, start):
            try:
                forced = pydicom.dcmread(
                    readable, stop_before_pixels=stop_before_pixels, force=True
                )
                looks_like_dicom = "SOPClassUID" in forced and "SOPInstanceUID" in forced
            except Exception:  # noqa: BLE001 - odd bytes fail in many ways under force=True
                looks_like_dicom = False
        if not looks_like_dicom:
            raise DicomReadError(
                name, "not a DICOM file (no 'DICM' marker and no DICOM data set found)"
            )
        return forced
    except DicomReadError:
        raise
    except FileNotFoundError:
        raise DicomReadError(name, "file not found") from None
    except IsADirectoryError:
        raise DicomReadError(name, "is a directory, not a file") from None
    except PermissionError:
        raise DicomReadError(name, "permission denied") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt input
        raise DicomReadError(name, f"broken or truncated DICOM file ({_describe(exc)})") from exc


# ---------------------------------------------------------------------------
# Attribute helpers (tolerant of missing and malformed values)
# ---------------------------------------------------------------------------


def _get(ds: Dataset, keyword: str) -> Any:
    """The value of ``keyword`` or None when absent, empty or undecodable."""
    try:
        element = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value must not stop the read
        return None
    if element is None or element == "":
        return None
    return element


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = _get(ds, keyword)
    if not seq:
        return None
    try:
        item = seq[0]
    except (IndexError, TypeError):
        return None
    return item if isinstance(item, Dataset) else None


def _laterality(value: Any) -> str | None:
    """ "L" or "R", else None (B both, U unknown, empty, anything else)."""
    text = _str(value).upper()
    return text if text in ("L", "R") else None


def _positive(value: Any) -> float | None:
    number = _float_or_none(value)
    if number is None or number == 0.0:
        return None
    # Some scanners write a signed SpacingBetweenSlices; the distance is what matters.
    return abs(number)


def _orientation(value: Any) -> tuple[float, float, float, float, float, float] | None:
    numbers = _floats(value, 6)
    if numbers is None:
        return None
    row, col = np.asarray(numbers[:3]), np.asarray(numbers[3:])
    if np.linalg.norm(row) < 1e-6 or np.linalg.norm(col) < 1e-6:
        return None
    return (numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5])


def _position(value: Any) -> tuple[float, float, float] | None:
    numbers = _floats(value, 3)
    return None if numbers is None else (numbers[0], numbers[1], numbers[2])


@dataclass(frozen=True)
class _FrameGeometry:
    pixel_spacing_mm: tuple[float, float] | None
    slice_thickness_mm: float | None
    spacing_between_slices_mm: float | None
    image_position: tuple[float, float, float] | None
    image_orientation: tuple[float, float, float, float, float, float] | None
    laterality: str | None
    rescale: Dataset


def _functional_group(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """Item of ``keyword`` for ``frame`` (0-based): per-frame group first, then shared."""
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        item = _first_item(per_frame[frame], keyword)
        if item is not None:
            return item
    return _first_item(_first_item(ds, "SharedFunctionalGroupsSequence"), keyword)


PLAUSIBLE_PIXEL_MM = (0.01, 20.0)
"""In-plane pixel sizes an MR image can have (clinical hip MRI: about 0.3-2 mm); a value
outside is a broken header, and every area and volume measured with it would be wrong."""


def _spacing(value: Any) -> tuple[float, float] | None:
    numbers = _floats(value, 2)
    if numbers is None or numbers[0] <= 0 or numbers[1] <= 0:
        return None
    return (numbers[0], numbers[1])


def _laterality_of(ds: Dataset) -> str | None:
    """ImageLaterality L/R; B (both sides on the image) means None; else series Laterality."""
    image_laterality = _str(_get(ds, "ImageLaterality")).upper()
    if image_laterality in ("L", "R"):
        return image_laterality
    if image_laterality == "B":
        return None
    return _laterality(_get(ds, "Laterality"))


def _frame_geometry(ds: Dataset, frame: int, *, frame_count: int) -> _FrameGeometry:
    """Geometry and rescale of one frame: functional groups (enhanced) or top level (classic)."""
    measures = _functional_group(ds, frame, "PixelMeasuresSequence")
    position = _functional_group(ds, frame, "PlanePositionSequence")
    orientation = _functional_group(ds, frame, "PlaneOrientationSequence")
    transform = _functional_group(ds, frame, "PixelValueTransformationSequence")
    anatomy = _functional_group(ds, frame, "FrameAnatomySequence")

    def pick(item: Dataset | None, keyword: str) -> Any:
        value = _get(item, keyword) if item is not None else None
        return value if value is not None else _get(ds, keyword)

    image_position = _position(pick(position, "ImagePositionPatient"))
    if position is None and frame_count > 1:
        # A classic object with several frames has one position for all of them:
        # unknown per frame, so sorting falls back to the frame number.
        image_position = None

    rescale = Dataset()
    source = transform if transform is not None and "RescaleSlope" in transform else ds
    if "RescaleSlope" in source and "RescaleIntercept" in source:
        slope = _float_or_none(_get(source, "RescaleSlope"))
        intercept = _float_or_none(_get(source, "RescaleIntercept"))
        rescale.RescaleSlope = 1.0 if slope is None else slope
        rescale.RescaleIntercept = 0.0 if intercept is None else intercept
    elif source is ds and _get(ds, "ModalityLUTSequence"):
        rescale.ModalityLUTSequence = ds.ModalityLUTSequence
        if hasattr(ds, "file_meta"):
            rescale.file_meta = ds.file_meta

    frame_laterality = _str(_get(anatomy, "FrameLaterality")).upper() if anatomy else ""
    laterality: str | None
    if frame_laterality in ("L", "R"):
        laterality = frame_laterality
    elif frame_laterality == "B":
        laterality = None
    else:
        laterality = _laterality_of(ds)

    return _FrameGeometry(
        pixel_spacing_mm=_spacing(pick(measures, "PixelSpacing")),
        slice_thickness_mm=_positive(pick(measures, "SliceThickness")),
        spacing_between_slices_mm=_positive(pick(measures, "SpacingBetweenSlices")),
        image_position=image_position,
        image_orientation=_orientation(pick(orientation, "ImageOrientationPatient")),
        laterality=laterality,
        rescale=rescale,
    )


# ---------------------------------------------------------------------------
# Checks and decoding
# ---------------------------------------------------------------------------


def _sop_class_name(ds: Dataset) -> str:
    uid = _get(ds, "SOPClassUID")
    if uid is None:
        return "no SOP Class UID"
    return f"SOP Class '{pydicom.uid.UID(str(uid)).name}'"


def _transfer_syntax(ds: Dataset) -> pydicom.uid.UID | None:
    meta = getattr(ds, "file_meta", None)
    uid = _get(meta, "TransferSyntaxUID") if meta is not None else None
    return None if uid is None else pydicom.uid.UID(str(uid))


def _why_no_pixels(ds: Dataset) -> str:
    if len(ds) == 0:
        return "empty data set after the file meta information (truncated or empty file)"
    sop_class = _str(_get(ds, "SOPClassUID"))
    is_image_class = "Image Storage" in pydicom.uid.UID(sop_class).name if sop_class else False
    if is_image_class or ("Rows" in ds and "Columns" in ds):
        return (
            f"no pixel data although it is an image ({_sop_class_name(ds)}): "
            "truncated or incomplete file"
        )
    return f"not an image: no pixel data ({_sop_class_name(ds)})"


def _check_image(ds: Dataset, name: str) -> None:
    """Refuse what is not a greyscale MR image, with the reason."""
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise DicomReadError(name, _why_no_pixels(ds))

    modality = _str(_get(ds, "Modality")).upper()
    sop_class = _str(_get(ds, "SOPClassUID"))
    if modality != "MR":
        if modality:
            raise DicomReadError(name, f"not an MR image (Modality '{modality}')")
        if sop_class not in MR_SOP_CLASS_UIDS:
            raise DicomReadError(name, f"not an MR image (no Modality, {_sop_class_name(ds)})")

    samples = _int_or_none(_get(ds, "SamplesPerPixel"))
    photometric = _str(_get(ds, "PhotometricInterpretation")).upper()
    if (samples is not None and samples != 1) or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomReadError(
            name,
            "not a greyscale image (PhotometricInterpretation "
            f"'{photometric or 'missing'}', {samples if samples is not None else '?'} "
            "samples per pixel); only single-channel MR can be graded",
        )
    if photometric == "MONOCHROME1":
        raise DicomReadError(
            name,
            "MONOCHROME1 (inverted grey scale) is not supported for MR grading; "
            "convert to MONOCHROME2",
        )


def _frame_count(ds: Dataset) -> int:
    count = _int_or_none(_get(ds, "NumberOfFrames"))
    return 1 if count is None or count < 1 else count


def _decode(ds: Dataset, name: str) -> npt.NDArray[Any]:
    """The stored values as pydicom decodes them: ``(H, W)`` or ``(frames, H, W)``."""
    syntax = _transfer_syntax(ds)
    syntax_name = syntax.name if syntax is not None else "unknown transfer syntax"
    try:
        array = ds.pixel_array
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise many types on corrupt input
        raise DicomReadError(
            name, f"cannot decode pixel data ({syntax_name}): {_describe(exc)}"
        ) from exc
    return np.asarray(array)


def _check_shape(array: npt.NDArray[Any], frames: int, name: str) -> None:
    expected_ndim = 3 if frames > 1 else 2
    if array.ndim != expected_ndim or min(array.shape) < 1:
        raise DicomReadError(
            name, f"not a 2D greyscale image (decoded pixel array of shape {array.shape})"
        )


def _to_slices(ds: Dataset, name: str, *, allow_multiframe: bool) -> list[MRSlice]:
    _check_image(ds, name)
    frames = _frame_count(ds)
    if frames > 1 and not allow_multiframe:
        raise DicomReadError(
            name, f"multi-frame image ({frames} frames); read it with read_mr_frames"
        )
    stored = _decode(ds, name)
    _check_shape(stored, frames, name)
    stack = stored if frames > 1 else stored[np.newaxis]

    study_uid = _str(_get(ds, "StudyInstanceUID"))
    series_uid = _str(_get(ds, "SeriesInstanceUID"))
    sop_uid = _str(_get(ds, "SOPInstanceUID"))
    instance_number = _int_or_none(_get(ds, "InstanceNumber"))

    slices: list[MRSlice] = []
    for index in range(stack.shape[0]):
        geometry = _frame_geometry(ds, index, frame_count=frames)
        frame_name = name if frames == 1 else f"{name} [frame {index + 1}]"
        if geometry.pixel_spacing_mm is None:
            raise DicomReadError(
                frame_name, "no usable PixelSpacing, so areas in mm² cannot be measured"
            )
        if not all(
            PLAUSIBLE_PIXEL_MM[0] <= v <= PLAUSIBLE_PIXEL_MM[1] for v in geometry.pixel_spacing_mm
        ):
            rows_mm, columns_mm = geometry.pixel_spacing_mm
            raise DicomReadError(
                frame_name,
                f"PixelSpacing {rows_mm:g} x {columns_mm:g} mm is not a plausible MR pixel "
                f"spacing ({PLAUSIBLE_PIXEL_MM[0]:g} to {PLAUSIBLE_PIXEL_MM[1]:g} mm), so "
                "areas in mm² cannot be trusted",
            )
        try:
            values = apply_modality_lut(stack[index], geometry.rescale)
        except Exception as exc:  # noqa: BLE001 - a malformed Modality LUT
            raise DicomReadError(
                frame_name, f"cannot apply the Modality LUT ({_describe(exc)})"
            ) from exc
        pixels = np.ascontiguousarray(values, dtype=np.float32)
        if not np.isfinite(pixels).all():
            bad = int(np.count_nonzero(~np.isfinite(pixels)))
            raise DicomReadError(
                frame_name, f"{bad} pixel value(s) are NaN or infinite: not a valid MR image"
            )
        slices.append(
            MRSlice(
                pixels=pixels,
                pixel_spacing_mm=geometry.pixel_spacing_mm,
                slice_thickness_mm=geometry.slice_thickness_mm,
                spacing_between_slices_mm=geometry.spacing_between_slices_mm,
                image_position=geometry.image_position,
                image_orientation=geometry.image_orientation,
                laterality=geometry.laterality,
                study_instance_uid=study_uid,
                series_instance_uid=series_uid,
                sop_instance_uid=sop_uid,
                instance_number=instance_number if frames == 1 else index + 1,
                source=frame_name,
            )
        )
    return slices


# ---------------------------------------------------------------------------
# Public reading API
# ---------------------------------------------------------------------------


def read_mr_slice(source: DicomSource, *, name: str | None = None) -> MRSlice:
    """Read one single-frame greyscale MR image.

    ``source``: a path, an open binary file or the file's bytes. ``name``:
    how messages and ``MRSlice.source`` name it (default: the path, the
    stream's ``name``, or ``"<bytes>"``).

    Returns an ``MRSlice`` whose ``pixels`` are ``(Rows, Columns)`` float32 in
    stored-value units after RescaleSlope/RescaleIntercept (or a Modality LUT),
    with PixelSpacing (row, column) in mm, SliceThickness and
    SpacingBetweenSlices in mm (None when absent), ImagePositionPatient (mm)
    and ImageOrientationPatient (direction cosines), laterality "L"/"R"
    from ImageLaterality, else (when it is absent or U) the series'
    Laterality, else None (ImageLaterality B, both hips, gives None), the
    three UIDs and InstanceNumber.

    Raises :class:`DicomReadError` (one line, ``"<name>: <reason>"``) for
    anything that is not a decodable single-frame greyscale MR image.
    """
    label = _source_name(source, name)
    ds = _open_dataset(source, label, stop_before_pixels=False)
    return _to_slices(ds, label, allow_multiframe=False)[0]


def read_mr_frames(source: DicomSource, *, name: str | None = None) -> list[MRSlice]:
    """Read every frame of an MR file, one ``MRSlice`` per frame, in frame order.

    A single-frame file gives a list of one (the same as :func:`read_mr_slice`).
    For multi-frame files each frame gets its own PixelSpacing, position,
    orientation and rescale from the Per-frame / Shared Functional Groups;
    ``instance_number`` is the 1-based frame number and ``source`` is
    ``"<name> [frame k]"``. Raises :class:`DicomReadError` as
    :func:`read_mr_slice` does.
    """
    label = _source_name(source, name)
    ds = _open_dataset(source, label, stop_before_pixels=False)
    return _to_slices(ds, label, allow_multiframe=True)


#: Extensions of files found in study folders next to DICOM files that are never DICOM
#: (ground truth, reports, viewers' caches); skipped when a folder is searched.
NOT_DICOM_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".json",
        ".csv",
        ".txt",
        ".md",
        ".html",
        ".xml",
        ".pdf",
        ".zip",
        ".py",
        ".log",
    }
)


def iter_dicom_paths(inputs: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files named in ``inputs`` and, for folders, every file below them.

    Folders are searched recursively in sorted order, skipping hidden files
    and folders (names starting with ``.``), ``DICOMDIR`` index files and files
    whose extension says they are something else (``.png``, ``.json``, ...;
    DICOM files often have no extension or ``.dcm``, never these). A file named
    directly is always yielded, hidden or not, and so is a path that does not
    exist, so that reading it reports the problem.
    """
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            yield path
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for file_name in sorted(files):
                if file_name.startswith(".") or file_name.upper() == "DICOMDIR":
                    continue
                if Path(file_name).suffix.lower() in NOT_DICOM_SUFFIXES:
                    continue
                yield Path(folder) / file_name


def read_many(
    paths: Iterable[str | os.PathLike[str]], *, split_frames: bool = False
) -> tuple[list[MRSlice], list[DicomReadError]]:
    """Read every path, never stopping on a bad one.

    Returns ``(slices, errors)``: the slices in input order, and one
    :class:`DicomReadError` per file that could not be read. With
    ``split_frames`` a multi-frame file contributes one slice per frame
    (:func:`read_mr_frames`); without it such a file is an error. Pass
    folders through :func:`iter_dicom_paths` first.
    """
    slices: list[MRSlice] = []
    errors: list[DicomReadError] = []
    for path in paths:
        try:
            if split_frames:
                slices.extend(read_mr_frames(path))
            else:
                slices.append(read_mr_slice(path))
        except DicomReadError as error:
            errors.append(error)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            errors.append(DicomReadError(os.fspath(path), f"unexpected error: {_describe(exc)}"))
    return slices, errors


@dataclass(frozen=True)
class DicomHeader:
    """What the portal checks at upload, read without the pixel data.

    Strings are "" when the attribute is absent; dates are DICOM ``YYYYMMDD``
    strings as stored; ``rows``/``columns`` are pixels; ``number_of_frames``
    is 1 for a single-frame image.
    """

    source: str
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int

    @property
    def is_mr(self) -> bool:
        """Modality MR, or an MR SOP Class when Modality is missing."""
        if self.modality:
            return self.modality.upper() == "MR"
        return self.sop_class_uid in MR_SOP_CLASS_UIDS


def inspect_dicom(source: DicomSource, *, name: str | None = None) -> DicomHeader:
    """Read the header of a DICOM file (``stop_before_pixels``) for ingest checks.

    Raises :class:`DicomReadError` for a file that is not DICOM or is
    broken, and for one that lacks a Study, Series or SOP Instance UID
    (the portal cannot file it). It does not check modality or pixels:
    :meth:`DicomHeader.is_mr` and :func:`read_mr_slice` do that.
    """
    label = _source_name(source, name)
    ds = _open_dataset(source, label, stop_before_pixels=True)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not _str(_get(ds, keyword)):
            raise DicomReadError(label, f"missing {keyword}")
    syntax = _transfer_syntax(ds)
    return DicomHeader(
        source=label,
        sop_class_uid=_str(_get(ds, "SOPClassUID")),
        sop_instance_uid=_str(_get(ds, "SOPInstanceUID")),
        study_instance_uid=_str(_get(ds, "StudyInstanceUID")),
        series_instance_uid=_str(_get(ds, "SeriesInstanceUID")),
        transfer_syntax_uid="" if syntax is None else str(syntax),
        modality=_str(_get(ds, "Modality")),
        patient_name=_str(_get(ds, "PatientName")),
        patient_id=_str(_get(ds, "PatientID")),
        patient_birth_date=_str(_get(ds, "PatientBirthDate")),
        patient_sex=_str(_get(ds, "PatientSex")),
        study_date=_str(_get(ds, "StudyDate")),
        study_time=_str(_get(ds, "StudyTime")),
        study_description=_str(_get(ds, "StudyDescription")),
        accession_number=_str(_get(ds, "AccessionNumber")),
        series_description=_str(_get(ds, "SeriesDescription")),
        series_number=_int_or_none(_get(ds, "SeriesNumber")),
        instance_number=_int_or_none(_get(ds, "InstanceNumber")),
        rows=_int_or_none(_get(ds, "Rows")),
        columns=_int_or_none(_get(ds, "Columns")),
        number_of_frames=_frame_count(ds),
    )


# ---------------------------------------------------------------------------
# Series geometry
# ---------------------------------------------------------------------------


def slice_normal(
    orientation: Sequence[float],
) -> tuple[float, float, float]:
    """Unit slice normal, row direction x column direction, from the 6 IOP cosines."""
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:6], dtype=np.float64)
    normal = np.cross(row, col)
    length = float(np.linalg.norm(normal))
    if length < 1e-6:
        raise ValueError(f"degenerate ImageOrientationPatient {tuple(orientation)}")
    normal /= length
    return (float(normal[0]), float(normal[1]), float(normal[2]))


def _series_normal(slices: Sequence[MRSlice]) -> tuple[float, float, float] | None:
    for mr_slice in slices:
        if mr_slice.image_orientation is not None:
            try:
                return slice_normal(mr_slice.image_orientation)
            except ValueError:
                continue
    return None


def _positions_along_normal(slices: Sequence[MRSlice]) -> list[float] | None:
    """Each slice's ImagePositionPatient projected on the series normal (mm), or None."""
    normal = _series_normal(slices)
    if normal is None:
        return None
    positions: list[float] = []
    for mr_slice in slices:
        if mr_slice.image_position is None:
            return None
        positions.append(float(np.dot(mr_slice.image_position, normal)))
    return positions


def sort_slices(slices: Sequence[MRSlice]) -> list[MRSlice]:
    """Order one series' slices by position along the slice normal, ascending.

    The normal is row x column direction of the first slice with an
    orientation. When any slice lacks a position (or no slice has an
    orientation) the order is by InstanceNumber, slices without one last.
    Ties keep the input order.
    """
    positions = _positions_along_normal(slices)
    if positions is not None:
        order = sorted(
            range(len(slices)),
            key=lambda i: (positions[i], _instance_key(slices[i])),
        )
        return [slices[i] for i in order]
    return sorted(slices, key=_instance_key)


def _instance_key(mr_slice: MRSlice) -> tuple[int, int]:
    number = mr_slice.instance_number
    return (1, 0) if number is None else (0, number)


def slice_spacing_mm(sorted_slices: Sequence[MRSlice]) -> float | None:
    """Distance between neighbouring slices in mm, or None when nothing says.

    From positions along the normal (the median gap between distinct
    positions of the sorted slices), else the first SpacingBetweenSlices,
    else the first SliceThickness.
    """
    positions = _positions_along_normal(sorted_slices)
    if positions is not None and len(positions) >= 2:
        gaps = [abs(b - a) for a, b in zip(positions, positions[1:], strict=False)]
        gaps = [gap for gap in gaps if gap > 1e-4]
        if gaps:
            return float(statistics.median(gaps))
    for mr_slice in sorted_slices:
        if mr_slice.spacing_between_slices_mm is not None:
            return mr_slice.spacing_between_slices_mm
    for mr_slice in sorted_slices:
        if mr_slice.slice_thickness_mm is not None:
            return mr_slice.slice_thickness_mm
    return None
