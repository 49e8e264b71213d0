"""Write synthetic MR slices and series as DICOM MR Image Storage objects.

Used by ``onfh phantoms``, the demo data and the tests, so that everything
downstream runs on the same kind of file a scanner sends. Every object is
marked synthetic: PatientIdentityRemoved ``YES``, a DeidentificationMethod
and ImageComments saying it is a phantom with no patient data, and
BurnedInAnnotation / RecognizableVisualFeatures ``NO``.

Modules written (DICOM PS3.3 MR Image IOD, A.4): Patient, General Study,
General Series, Frame of Reference, General Equipment, General Image, Image
Plane, Image Pixel, MR Image, VOI LUT (window from the data) and SOP Common,
with their type 1 and type 2 attributes. Two deliberate departures, for test
inputs only: ``bits_allocated=8`` (the MR Image module requires 16; JPEG
baseline needs 8) and RescaleSlope / RescaleIntercept (not part of the MR
Image IOD, but written by real scanners and honoured by every reader) are
written only when asked for; the defaults produce conformant objects.

Transfer syntaxes (:data:`WRITABLE_TRANSFER_SYNTAXES`): implicit and explicit
VR little endian, deflated explicit VR little endian, explicit VR big endian
(retired, for reader tests), RLE Lossless, JPEG-LS Lossless (pyjpegls) and
JPEG 2000 Lossless (pylibjpeg-openjpeg) through pydicom's
:meth:`~pydicom.dataset.Dataset.compress`, and JPEG Baseline 8-bit (lossy;
encoded with Pillow through :func:`highdicom.frame.encode_frame`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID
from pydicom.valuerep import DSfloat

__all__ = [
    "MANUFACTURER",
    "SYNTHETIC_COMMENT",
    "WRITABLE_TRANSFER_SYNTAXES",
    "write_mr_series",
    "write_mr_slice",
]

MANUFACTURER = "ONFH-Portal phantom"
SYNTHETIC_COMMENT = "SYNTHETIC PHANTOM - de-identified synthetic data, not from a patient"
_DEIDENTIFICATION_METHOD = "Synthetic ONFH portal phantom: no patient data"
_SOFTWARE_VERSION = "onfh-portal 0.1"

_UNCOMPRESSED = (
    pydicom.uid.ImplicitVRLittleEndian,
    pydicom.uid.ExplicitVRLittleEndian,
    pydicom.uid.DeflatedExplicitVRLittleEndian,
    pydicom.uid.ExplicitVRBigEndian,
)
_COMPRESS_LOSSLESS = (
    pydicom.uid.RLELossless,
    pydicom.uid.JPEGLSLossless,
    pydicom.uid.JPEG2000Lossless,
)
_J2K_MIN_SIDE = 32
WRITABLE_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    *_UNCOMPRESSED,
    *_COMPRESS_LOSSLESS,
    pydicom.uid.JPEGBaseline8Bit,
)
"""Transfer syntaxes :func:`write_mr_series` and :func:`write_mr_slice` can write."""


# ---------------------------------------------------------------------------
# Validation and value helpers
# ---------------------------------------------------------------------------


def _ds(value: float) -> DSfloat:
    """A decimal string of at most 16 characters, as DS requires."""
    return DSfloat(float(value), auto_format=True)


def _unit(vector: npt.NDArray[np.float64], what: str) -> npt.NDArray[np.float64]:
    length = float(np.linalg.norm(vector))
    if not math.isfinite(length) or length < 1e-6:
        raise ValueError(f"{what} must be a non-zero direction, got {tuple(vector)}")
    return vector / length


def _orientation_vectors(
    image_orientation: Sequence[float],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Unit row direction, column direction and normal (row x column)."""
    if len(image_orientation) != 6:
        raise ValueError(
            f"image_orientation needs 6 direction cosines, got {len(image_orientation)}"
        )
    row = _unit(np.asarray(image_orientation[:3], dtype=np.float64), "row direction")
    col = _unit(np.asarray(image_orientation[3:], dtype=np.float64), "column direction")
    if abs(float(np.dot(row, col))) > 1e-3:
        raise ValueError("image_orientation row and column directions must be orthogonal")
    return row, col, _unit(np.cross(row, col), "slice normal")


def _patient_orientation_letters(direction: npt.NDArray[np.float64]) -> str:
    """PatientOrientation code of one direction, e.g. (1, 0, 0) -> "L", (0, 0.7, -0.7) -> "PF"."""
    # Patient axes: +x towards the patient's left, +y posterior, +z head.
    axis_letters = (("L", "R"), ("P", "A"), ("H", "F"))
    letters = []
    for axis in np.argsort(-np.abs(direction)):
        component = float(direction[axis])
        if abs(component) >= 1e-3:
            plus, minus = axis_letters[int(axis)]
            letters.append(plus if component > 0 else minus)
    return "".join(letters)


def _check_common(
    *,
    pixel_spacing_mm: tuple[float, float],
    slice_thickness_mm: float,
    spacing_between_slices_mm: float | None,
    laterality: str | None,
    study_date: str | None,
    transfer_syntax_uid: str,
    bits_allocated: int,
    bits_stored: int,
    pixel_representation: int,
    rescale_slope: float,
    rescale_intercept: float,
) -> UID:
    if len(pixel_spacing_mm) != 2 or not all(math.isfinite(v) and v > 0 for v in pixel_spacing_mm):
        raise ValueError(f"pixel_spacing_mm must be two positive mm values, got {pixel_spacing_mm}")
    if not (math.isfinite(slice_thickness_mm) and slice_thickness_mm > 0):
        raise ValueError(f"slice_thickness_mm must be positive, got {slice_thickness_mm}")
    if spacing_between_slices_mm is not None and not (
        math.isfinite(spacing_between_slices_mm) and spacing_between_slices_mm > 0
    ):
        raise ValueError(
            f"spacing_between_slices_mm must be positive, got {spacing_between_slices_mm}"
        )
    if laterality not in (None, "L", "R", "B", "U"):
        raise ValueError(f"laterality must be 'L', 'R', 'B', 'U' or None, got {laterality!r}")
    if study_date is not None and not (len(study_date) == 8 and study_date.isdigit()):
        raise ValueError(f"study_date must be YYYYMMDD, got {study_date!r}")
    syntax = UID(transfer_syntax_uid)
    if syntax not in WRITABLE_TRANSFER_SYNTAXES:
        names = ", ".join(uid.name for uid in WRITABLE_TRANSFER_SYNTAXES)
        raise ValueError(f"cannot write transfer syntax {syntax.name}; choose one of: {names}")
    if bits_allocated not in (8, 16):
        raise ValueError(f"bits_allocated must be 8 or 16, got {bits_allocated}")
    if not 1 <= bits_stored <= bits_allocated:
        raise ValueError(f"bits_stored must be 1..{bits_allocated}, got {bits_stored}")
    if pixel_representation not in (0, 1):
        raise ValueError(f"pixel_representation must be 0 or 1, got {pixel_representation}")
    if not (math.isfinite(rescale_slope) and rescale_slope != 0):
        raise ValueError(f"rescale_slope must be finite and non-zero, got {rescale_slope}")
    if not math.isfinite(rescale_intercept):
        raise ValueError(f"rescale_intercept must be finite, got {rescale_intercept}")
    if syntax == pydicom.uid.JPEGBaseline8Bit and (
        bits_allocated != 8 or bits_stored != 8 or pixel_representation != 0
    ):
        raise ValueError("JPEG Baseline needs unsigned 8-bit pixels (bits_allocated=8, unsigned)")
    return syntax


def _stored_values(
    values: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    *,
    bits_allocated: int,
    bits_stored: int,
    pixel_representation: int,
    rescale_slope: float,
    rescale_intercept: float,
) -> npt.NDArray[np.integer]:
    """Stored integers ``round((value - intercept) / slope)``, checked against the bit depth."""
    as_float = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(as_float)):
        raise ValueError("volume contains NaN or infinite values")
    stored = np.rint((as_float - rescale_intercept) / rescale_slope)
    if pixel_representation == 1:
        low, high = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    else:
        low, high = 0, 2**bits_stored - 1
    if stored.size and (stored.min() < low or stored.max() > high):
        raise ValueError(
            f"values need stored integers {stored.min():.0f}..{stored.max():.0f}, outside "
            f"{low}..{high} for {bits_stored} bits stored "
            f"({'signed' if pixel_representation else 'unsigned'}); change rescale_slope/"
            "rescale_intercept, bits or pixel_representation"
        )
    kind = "int" if pixel_representation == 1 else "uint"
    return stored.astype(f"{kind}{bits_allocated}")


def _window(values: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> tuple[float, float]:
    """Window centre and width (output units) covering the 1st to 99th percentile."""
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [1.0, 99.0])
    width = max(float(high - low), 1.0)
    return float((high + low) / 2.0), width


# ---------------------------------------------------------------------------
# Building one data set
# ---------------------------------------------------------------------------


def _build_dataset(
    stored: npt.NDArray[np.integer],
    *,
    syntax: UID,
    pixel_spacing_mm: tuple[float, float],
    slice_thickness_mm: float,
    spacing_between_slices_mm: float | None,
    image_orientation: Sequence[float],
    image_position: npt.NDArray[np.float64],
    patient_name: str,
    patient_id: str,
    study_instance_uid: str,
    series_instance_uid: str,
    sop_instance_uid: str,
    frame_of_reference_uid: str,
    series_description: str,
    series_number: int,
    instance_number: int,
    laterality: str | None,
    study_date: str,
    study_time: str,
    bits_allocated: int,
    bits_stored: int,
    pixel_representation: int,
    rescale_slope: float,
    rescale_intercept: float,
    window: tuple[float, float],
) -> Dataset:
    """An MR Image Storage data set for one ``(H, W)`` slice of stored integers."""
    row, col, normal = _orientation_vectors(image_orientation)
    rows, columns = stored.shape

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "ONFH_PORTAL_01"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"

    # SOP Common
    ds.SOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceCreationDate = study_date
    ds.InstanceCreationTime = study_time

    # Patient (synthetic, de-identified by construction)
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = _DEIDENTIFICATION_METHOD

    # General Study
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = "ONFH synthetic phantom"

    # General Series
    ds.Modality = "MR"
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.SeriesDate = study_date
    ds.SeriesTime = study_time
    ds.BodyPartExamined = "HIP"
    ds.PatientPosition = "HFS"
    if laterality is None:
        ds.Laterality = ""  # type 2C: the hip is paired and no ImageLaterality is sent

    # Frame of Reference
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""

    # General Equipment
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "Synthetic T1 hip"
    ds.SoftwareVersions = _SOFTWARE_VERSION

    # General Image
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = [
        _patient_orientation_letters(row),
        _patient_orientation_letters(col),
    ]
    ds.ContentDate = study_date
    ds.ContentTime = study_time
    ds.AcquisitionNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    if laterality is not None:
        ds.ImageLaterality = laterality
    ds.ImageComments = SYNTHETIC_COMMENT
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.LossyImageCompression = "00"

    # Image Plane
    ds.PixelSpacing = [_ds(pixel_spacing_mm[0]), _ds(pixel_spacing_mm[1])]
    ds.ImageOrientationPatient = [_ds(v) for v in (*row, *col)]
    ds.ImagePositionPatient = [_ds(v) for v in image_position]
    ds.SliceThickness = _ds(slice_thickness_mm)
    ds.SliceLocation = _ds(float(np.dot(image_position, normal)))

    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = pixel_representation
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OB" if bits_allocated == 8 else "OW"

    # MR Image
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = "se2d1"
    ds.RepetitionTime = _ds(500.0)
    ds.EchoTime = _ds(10.0)
    ds.EchoTrainLength = 1
    ds.NumberOfAverages = _ds(1.0)
    ds.ImagingFrequency = _ds(63.87)
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = 1
    ds.MagneticFieldStrength = _ds(1.5)
    ds.FlipAngle = _ds(90.0)
    if spacing_between_slices_mm is not None:
        ds.SpacingBetweenSlices = _ds(spacing_between_slices_mm)

    # Modality LUT (outside the MR IOD; written only when it is not the identity)
    if rescale_slope != 1.0 or rescale_intercept != 0.0:
        ds.RescaleSlope = _ds(rescale_slope)
        ds.RescaleIntercept = _ds(rescale_intercept)
        ds.RescaleType = "US"

    # VOI LUT
    ds.WindowCenter = _ds(window[0])
    ds.WindowWidth = _ds(window[1])
    ds.WindowCenterWidthExplanation = "1st to 99th percentile"

    _encode_pixels(ds, stored, syntax)
    return ds


def _encode_pixels(ds: Dataset, stored: npt.NDArray[np.integer], syntax: UID) -> None:
    """Put the pixels in ``syntax``: byte order, pydicom encoders, or Pillow JPEG."""
    if syntax in _UNCOMPRESSED:
        ds.file_meta.TransferSyntaxUID = syntax
        if syntax == pydicom.uid.ExplicitVRBigEndian and stored.dtype.itemsize > 1:
            # pydicom writes OW bytes as given: they must already be big endian.
            ds.PixelData = stored.astype(stored.dtype.newbyteorder(">")).tobytes()
        return
    if syntax == pydicom.uid.JPEG2000Lossless and min(stored.shape) < _J2K_MIN_SIDE:
        raise ValueError(
            f"JPEG 2000 encoding (pylibjpeg-openjpeg, 6 wavelet levels) needs rows and "
            f"columns >= {_J2K_MIN_SIDE}, got {stored.shape}"
        )
    if syntax in _COMPRESS_LOSSLESS:
        # A new object compressed at creation: keep its SOP Instance UID.
        ds.compress(syntax, stored, generate_instance_uid=False)
        return
    # JPEG Baseline (lossy, 8-bit): Pillow's libjpeg through highdicom (imported
    # here: it is slow to import and only this branch needs it).
    import highdicom.frame

    frame = highdicom.frame.encode_frame(
        np.ascontiguousarray(stored),
        transfer_syntax_uid=pydicom.uid.JPEGBaseline8Bit,
        bits_allocated=8,
        bits_stored=8,
        photometric_interpretation="MONOCHROME2",
        pixel_representation=0,
    )
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = _ds(stored.nbytes / max(len(frame), 1))
    ds.LossyImageCompressionMethod = "ISO_10918_1"


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _dates(study_date: str | None) -> tuple[str, str]:
    """(StudyDate, StudyTime): the given date at noon (reproducible) or now."""
    if study_date is not None:
        return study_date, "120000"
    now = datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _frame_of_reference(study_instance_uid: str) -> str:
    """One frame of reference per study: a phantom's series share its patient coordinates."""
    return pydicom.uid.generate_uid(entropy_srcs=[study_instance_uid, "frame-of-reference"])


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def write_mr_series(
    volume: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    out_dir: Path,
    *,
    pixel_spacing_mm: tuple[float, float],
    slice_thickness_mm: float,
    spacing_between_slices_mm: float | None = None,
    image_orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    first_position: tuple[float, float, float] = (0.0, 0.0, 0.0),
    patient_name: str = "PHANTOM^HIP",
    patient_id: str = "PHANTOM",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    series_description: str = "AX T1 HIP",
    series_number: int = 1,
    laterality: str | None = None,
    study_date: str | None = None,
    transfer_syntax_uid: str = pydicom.uid.ExplicitVRLittleEndian,
    bits_allocated: int = 16,
    pixel_representation: int = 0,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    bits_stored: int | None = None,
) -> list[Path]:
    """Write a ``(N, H, W)`` volume as N single-frame MR Image Storage files.

    ``volume``: stored-value units (what :func:`~grading.dicom.reader.read_mr_slice`
    gives back); each value is stored as ``round((value - rescale_intercept) /
    rescale_slope)`` in ``bits_stored`` bits (default ``bits_allocated``),
    signed when ``pixel_representation`` is 1; a value that does not fit
    raises ValueError, nothing is clipped. ``pixel_spacing_mm``: (row, column)
    spacing in mm. ``slice_thickness_mm``: mm. Slice ``k`` lies at
    ``first_position + k * spacing * normal`` (mm), with ``spacing`` =
    ``spacing_between_slices_mm`` (written as SpacingBetweenSlices when given)
    or else ``slice_thickness_mm``, and ``normal`` = row direction x column
    direction of ``image_orientation``. On the default orientation the
    image's left is the patient's right. ``laterality``: ImageLaterality
    "L"/"R"/"B"/"U", or None (Laterality written empty).

    With ``study_instance_uid``, ``series_instance_uid`` and ``study_date``
    given the output is reproducible: SOP Instance UIDs derive from the
    series UID and the slice index, the frame of reference from the study.

    Files are ``out_dir / f"{series_number:03d}_{k + 1:04d}.dcm"`` (existing
    files of that name are replaced); returns their paths in slice order.
    """
    array = np.asarray(volume)
    if array.ndim != 3 or min(array.shape) < 1:
        raise ValueError(f"volume must be (N, H, W), got shape {array.shape}")
    stored_bits = bits_allocated if bits_stored is None else bits_stored
    syntax = _check_common(
        pixel_spacing_mm=pixel_spacing_mm,
        slice_thickness_mm=slice_thickness_mm,
        spacing_between_slices_mm=spacing_between_slices_mm,
        laterality=laterality,
        study_date=study_date,
        transfer_syntax_uid=transfer_syntax_uid,
        bits_allocated=bits_allocated,
        bits_stored=stored_bits,
        pixel_representation=pixel_representation,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
    )
    stored = _stored_values(
        array,
        bits_allocated=bits_allocated,
        bits_stored=stored_bits,
        pixel_representation=pixel_representation,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
    )
    window = _window(array)
    _, _, normal = _orientation_vectors(image_orientation)
    spacing = (
        spacing_between_slices_mm if spacing_between_slices_mm is not None else slice_thickness_mm
    )
    origin = np.asarray(first_position, dtype=np.float64)
    if origin.shape != (3,):
        raise ValueError(f"first_position must be 3 mm coordinates, got {first_position}")
    study_uid = study_instance_uid or pydicom.uid.generate_uid()
    series_uid = series_instance_uid or pydicom.uid.generate_uid()
    date, time = _dates(study_date)

    paths: list[Path] = []
    for index in range(stored.shape[0]):
        ds = _build_dataset(
            stored[index],
            syntax=syntax,
            pixel_spacing_mm=pixel_spacing_mm,
            slice_thickness_mm=slice_thickness_mm,
            spacing_between_slices_mm=spacing_between_slices_mm,
            image_orientation=image_orientation,
            image_position=origin + index * spacing * normal,
            patient_name=patient_name,
            patient_id=patient_id,
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            sop_instance_uid=pydicom.uid.generate_uid(entropy_srcs=[series_uid, str(index)]),
            frame_of_reference_uid=_frame_of_reference(study_uid),
            series_description=series_description,
            series_number=series_number,
            instance_number=index + 1,
            laterality=laterality,
            study_date=date,
            study_time=time,
            bits_allocated=bits_allocated,
            bits_stored=stored_bits,
            pixel_representation=pixel_representation,
            rescale_slope=rescale_slope,
            rescale_intercept=rescale_intercept,
            window=window,
        )
        paths.append(_save(ds, Path(out_dir) / f"{series_number:03d}_{index + 1:04d}.dcm"))
    return paths


def write_mr_slice(
    image: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    path: Path,
    *,
    pixel_spacing_mm: tuple[float, float],
    slice_thickness_mm: float = 5.0,
    spacing_between_slices_mm: float | None = None,
    image_orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    image_position: tuple[float, float, float] = (0.0, 0.0, 0.0),
    patient_name: str = "PHANTOM^HIP",
    patient_id: str = "PHANTOM",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_description: str = "AX T1 HIP",
    series_number: int = 1,
    instance_number: int = 1,
    laterality: str | None = None,
    study_date: str | None = None,
    transfer_syntax_uid: str = pydicom.uid.ExplicitVRLittleEndian,
    bits_allocated: int = 16,
    bits_stored: int | None = None,
    pixel_representation: int = 0,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
) -> Path:
    """Write one ``(H, W)`` image (e.g. a 256x256 hip crop) as an MR Image Storage file.

    Units and checks as :func:`write_mr_series`; ``image_position`` is
    ImagePositionPatient in mm; ``laterality`` "L"/"R" is written as
    ImageLaterality (the side a crop shows). ``sop_instance_uid`` defaults
    to one derived from the series UID and ``instance_number``. Writes
    ``path`` (parent folders created) and returns it.
    """
    array = np.asarray(image)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"image must be (H, W), got shape {array.shape}")
    stored_bits = bits_allocated if bits_stored is None else bits_stored
    syntax = _check_common(
        pixel_spacing_mm=pixel_spacing_mm,
        slice_thickness_mm=slice_thickness_mm,
        spacing_between_slices_mm=spacing_between_slices_mm,
        laterality=laterality,
        study_date=study_date,
        transfer_syntax_uid=transfer_syntax_uid,
        bits_allocated=bits_allocated,
        bits_stored=stored_bits,
        pixel_representation=pixel_representation,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
    )
    stored = _stored_values(
        array,
        bits_allocated=bits_allocated,
        bits_stored=stored_bits,
        pixel_representation=pixel_representation,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
    )
    position = np.asarray(image_position, dtype=np.float64)
    if position.shape != (3,):
        raise ValueError(f"image_position must be 3 mm coordinates, got {image_position}")
    study_uid = study_instance_uid or pydicom.uid.generate_uid()
    series_uid = series_instance_uid or pydicom.uid.generate_uid()
    date, time = _dates(study_date)
    ds = _build_dataset(
        stored,
        syntax=syntax,
        pixel_spacing_mm=pixel_spacing_mm,
        slice_thickness_mm=slice_thickness_mm,
        spacing_between_slices_mm=spacing_between_slices_mm,
        image_orientation=image_orientation,
        image_position=position,
        patient_name=patient_name,
        patient_id=patient_id,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_instance_uid
        or pydicom.uid.generate_uid(entropy_srcs=[series_uid, str(instance_number - 1)]),
        frame_of_reference_uid=_frame_of_reference(study_uid),
        series_description=series_description,
        series_number=series_number,
        instance_number=instance_number,
        laterality=laterality,
        study_date=date,
        study_time=time,
        bits_allocated=bits_allocated,
        bits_stored=stored_bits,
        pixel_representation=pixel_representation,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
        window=_window(array),
    )
    return _save(ds, Path(path))
