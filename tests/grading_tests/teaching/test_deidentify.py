"""grading.dicom.deidentify: the PS3.15 basic profile on the project's own DICOM files
(no database)."""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from grading.dicom.deidentify import DeidentificationKey, deidentify_bytes, remap_uid
from tests.grading_tests.teaching.conftest import SOURCE_STRINGS

KEY = DeidentificationKey(seed="collection-one-secret", date_offset_days=-400)
OTHER = DeidentificationKey(seed="collection-two-secret", date_offset_days=-1000)


def _copy(path: Path, key: DeidentificationKey = KEY, pseudonym: str = "Case 7") -> pydicom.Dataset:
    return pydicom.dcmread(
        io.BytesIO(deidentify_bytes(path.read_bytes(), key=key, pseudonym=pseudonym))
    )


def _shifted(value: str, days: int) -> str:
    date = datetime.datetime.strptime(value[:8], "%Y%m%d") + datetime.timedelta(days=days)
    return date.strftime("%Y%m%d") + value[8:]


def test_no_names_ids_or_birth_date_remain(teaching_phantom):
    ds = _copy(teaching_phantom.paths[0])
    assert str(ds.PatientName) == "Case^7"
    assert ds.PatientID == "CASE-7"
    assert ds.PatientBirthDate == ""
    assert ds.PatientSex == ""
    assert ds.AccessionNumber == ""
    assert str(ds.ReferringPhysicianName) == ""
    for keyword in (
        "PatientAge",
        "OtherPatientIDs",
        "PatientAddress",
        "InstitutionName",
        "StudyDescription",
        "SeriesDescription",
    ):
        assert keyword not in ds, keyword
    assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == ""
    del ds.PixelData
    text = (str(ds) + str(ds.file_meta)).upper()
    for needle in SOURCE_STRINGS:
        assert needle.upper() not in text, needle


def test_profile_is_declared(teaching_phantom):
    ds = _copy(teaching_phantom.paths[0])
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = [
        (item.CodeValue, item.CodingSchemeDesignator)
        for item in ds.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM"), ("113107", "DCM")]
    assert ds.DeidentificationMethod


def test_dates_shift_by_the_key_and_times_stay(teaching_phantom):
    source = pydicom.dcmread(teaching_phantom.paths[0])
    ds = _copy(teaching_phantom.paths[0])
    for keyword in ("StudyDate", "SeriesDate", "ContentDate", "InstanceCreationDate"):
        assert ds.data_element(keyword).value == _shifted(source.data_element(keyword).value, -400)
    assert ds.StudyTime == source.StudyTime
    nested = ds.VerifyingObserverSequence[0].VerificationDateTime
    assert nested == _shifted("20240102120000", -400)
    assert _copy(teaching_phantom.paths[0], OTHER).StudyDate == _shifted(source.StudyDate, -1000)


def test_uids_are_remapped_consistently_within_a_key_and_differently_across(teaching_phantom):
    sources = [pydicom.dcmread(p) for p in teaching_phantom.paths]
    copies = [_copy(p) for p in teaching_phantom.paths]
    again = [_copy(p, pseudonym="Case 8") for p in teaching_phantom.paths]
    others = [_copy(p, OTHER) for p in teaching_phantom.paths]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({c.data_element(keyword).value for c in copies}) == 1
        new = copies[0].data_element(keyword).value
        assert new != sources[0].data_element(keyword).value
        assert new == again[0].data_element(keyword).value
        assert new != others[0].data_element(keyword).value
    assert copies[0].StudyInstanceUID == remap_uid(sources[0].StudyInstanceUID, key=KEY)
    sops = [c.SOPInstanceUID for c in copies]
    assert len(set(sops)) == len(sops)
    assert not set(sops) & {s.SOPInstanceUID for s in sources}
    assert not set(sops) & {o.SOPInstanceUID for o in others}
    for copy in copies:
        assert copy.file_meta.MediaStorageSOPInstanceUID == copy.SOPInstanceUID
        assert copy.SOPClassUID == sources[0].SOPClassUID
        assert len(copy.SOPInstanceUID) <= 64
        assert all(
            part.isdigit() and (part == "0" or not part.startswith("0"))
            for part in copy.SOPInstanceUID.split(".")
        )


def test_private_tags_are_removed(teaching_phantom):
    source = pydicom.dcmread(teaching_phantom.paths[0])
    assert any(element.tag.is_private for element in source)
    ds = _copy(teaching_phantom.paths[0])
    assert not any(element.tag.is_private for element in ds.iterall())


def test_pixel_data_and_geometry_are_identical(teaching_phantom):
    for path in teaching_phantom.paths:
        source = pydicom.dcmread(path)
        ds = _copy(path)
        assert ds.PixelData == source.PixelData
        assert np.array_equal(ds.pixel_array, source.pixel_array)
        for keyword in (
            "Rows",
            "Columns",
            "PixelSpacing",
            "ImageOrientationPatient",
            "ImagePositionPatient",
            "SliceThickness",
            "BitsStored",
        ):
            assert ds.data_element(keyword).value == source.data_element(keyword).value


def test_the_dicom_layer_stays_free_of_django():
    code = "import sys, grading.dicom.deidentify; assert 'django' not in sys.modules"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("answer", "reference", "score"),
    [
        ("mild", "mild", 1.0),
        ("moderate", "mild", 0.5),
        ("none", "mild", 0.5),
        ("severe", "mild", 0.0),
        ("none", "severe", 0.0),
    ],
)
def test_grade_score(answer, reference, score):
    from grading.teaching.scoring import grade_score

    assert grade_score(answer, reference) == score


def test_case_score_and_dice():
    from grading.teaching.scoring import case_score, dice

    assert (
        case_score({"right": "mild", "left": "severe"}, {"right": "mild", "left": "moderate"})
        == 0.75
    )
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert dice([(a, b)]) == 1.0  # nothing marked, nothing there
    a[0, :2] = True
    b[0, 1:3] = True
    assert dice([(a, b)]) == pytest.approx(0.5)
    assert dice([(a, b), (np.zeros((4, 4), bool), b)]) == pytest.approx(2 / 6)
