"""pydicom's own Enhanced MR test files (package ``pydicom-data``): a Philips 3 T T1 TFE
with water excitation, 10 frames of 64 x 64, in five transfer syntaxes. They are a
vendor's header the project did not write, so they check the Enhanced MR reading and the
weighting rules against someone else's file (docs/grading.md, "Which series are graded")."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from rest_framework.test import APIClient

from grading.apis.dicomweb import frame_bytes
from grading.dicom.protocol import Weighting, classify_weighting, sequence_header
from grading.models import Instance, Series, Study
from grading.services import upload_ingest

pytestmark = pytest.mark.django_db

NAMES = (
    "emri_small.dcm",
    "emri_small_big_endian.dcm",
    "emri_small_RLE.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
)
SPACING = 0.9
STEP = 1.2


def _pydicom_file(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name}: pydicom-data is a dev dependency (make install)"
    return Path(path)


def _with_functional_groups(ds: Dataset, *, water_excitation: bool = True) -> bytes:
    """The file as a scanner writes it: shared pixel measures and orientation, a
    position per frame (the distributed test file has its functional groups stripped)."""
    measures = Dataset()
    measures.PixelSpacing = [SPACING, SPACING]
    measures.SliceThickness = STEP
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for index in range(int(ds.NumberOfFrames)):
        position = Dataset()
        position.ImagePositionPatient = [-28.8, -28.8, -STEP * index]
        frame = Dataset()
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    if not water_excitation:
        ds.SpectrallySelectedExcitation = "NONE"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _upload(scenario, name: str, data: bytes):
    return upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        client_address=None,
        files=[SimpleUploadedFile(name, data)],
    )


def test_the_weighting_of_a_vendor_enhanced_header() -> None:
    ds = pydicom.dcmread(_pydicom_file("emri_small.dcm"), stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    weighting, why = classify_weighting(sequence_header(ds))
    assert weighting == Weighting.FAT_SATURATED
    assert "water excitation" in why
    ds.SpectrallySelectedExcitation = "NONE"
    assert classify_weighting(sequence_header(ds)) == (Weighting.T1, "AcquisitionContrast T1")
    ds.AcquisitionContrast = "STIR"
    assert classify_weighting(sequence_header(ds))[0] == Weighting.STIR
    ds.AcquisitionContrast = "DIFFUSION"  # names none of ours: the other evidence decides
    assert classify_weighting(sequence_header(ds))[0] == Weighting.UNKNOWN


@pytest.mark.parametrize("name", NAMES)
def test_as_distributed_it_is_refused_with_a_reason(scenario, name: str) -> None:
    report = _upload(scenario, name, _pydicom_file(name).read_bytes())
    assert report.accepted == 0
    [refused] = report.rejected
    assert "PixelSpacing" in refused.reason
    assert not Study.objects.exists()


@pytest.mark.parametrize("name", NAMES)
def test_stored_frame_by_frame_not_graded_and_served(scenario, name: str) -> None:
    original = pydicom.dcmread(_pydicom_file(name))
    expected = original.pixel_array
    report = _upload(scenario, name, _with_functional_groups(original))
    assert report.rejected == [] and report.accepted == 1
    series = Series.objects.get()
    assert (series.weighting, series.plane, series.graded) == ("fat_saturated", "axial", False)
    assert "fat-suppressed" in series.not_graded_reason
    frames = Instance.objects.filter(series=series).order_by("frame_number")
    assert [f.frame_number for f in frames] == list(range(1, 11))
    client = APIClient()
    client.force_authenticate(scenario.clinician)
    body = client.get(f"/api/studies/{series.study_id}/").json()
    [listed] = body["series"]
    assert listed["graded"] is False and listed["not_graded_reason"] == series.not_graded_reason
    assert body["hips"] == []
    assert client.get(listed["instances"][3]["image_url"]).status_code == 200
    # The frames DICOMweb serves (native, little endian) are the file's own pixels.
    with frames[0].file.open("rb") as handle:
        stored = handle.read()
    served = list(frame_bytes(stored, [1, 4, 10]))
    for number, raw in zip((1, 4, 10), served, strict=True):
        pixels = np.frombuffer(raw, dtype=expected.dtype.newbyteorder("<"))
        assert np.array_equal(pixels.reshape(expected.shape[1:]), expected[number - 1])


def test_without_water_excitation_it_is_a_graded_t1_series(scenario) -> None:
    original = pydicom.dcmread(_pydicom_file("emri_small.dcm"))
    report = _upload(
        scenario, "emri.dcm", _with_functional_groups(original, water_excitation=False)
    )
    assert report.accepted == 1
    series = Series.objects.get()
    assert (series.weighting, series.graded, series.not_graded_reason) == ("T1", True, "")
