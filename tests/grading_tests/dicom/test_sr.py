"""DICOM SR export (pure builder): a TID 1500 Measurement Report with per-hip groups,
UCUM units, the grade as a qualitative evaluation, the observer; dciodvfy."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from grading.dicom.seg import AlgorithmInfo
from grading.dicom.sr import (
    GRADE_PROBABILITY_CODES,
    NECROTIC_PROPORTION,
    HipMeasurements,
    SliceAreas,
    build_measurement_report,
)
from tests.conftest import write_phantom_series
from tests.grading_tests.dicom.dciodvfy import dciodvfy

ALGORITHM = AlgorithmInfo(name="ONFH test segmenter", version="onfh-net-1.0+0123abcd")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Dataset]:
    files = write_phantom_series(
        tmp_path_factory.mktemp("sr-source"), seed=6, n_slices=3, matrix=(64, 64)
    )
    return [pydicom.dcmread(p) for p in files.paths]


def _hips(images: list[Dataset]) -> list[HipMeasurements]:
    uids = [str(ds.SOPInstanceUID) for ds in images]
    return [
        HipMeasurements(
            side="right",
            head_volume_mm3=12000.5,
            necrosis_volume_mm3=2400.25,
            proportion=0.2,
            grade="moderate",
            slice_areas=(
                SliceAreas(uids[0], 400.0, 0.0),
                SliceAreas(uids[1], 600.0, 150.5),
                SliceAreas(uids[2], 0.0, 0.0),
            ),
            proportion_interval=(0.12, 0.26),
            grade_probabilities={"none": 0.0, "mild": 0.2, "moderate": 0.75, "severe": 0.05},
        ),
        HipMeasurements(
            side="left",
            head_volume_mm3=11000.0,
            necrosis_volume_mm3=0.0,
            proportion=0.0,
            grade="none",
            slice_areas=(SliceAreas(uids[1], 550.0, 0.0),),
        ),
    ]


def _reread(sr: hd.sr.Comprehensive3DSR) -> hd.sr.Comprehensive3DSR:
    buffer = BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return hd.sr.srread(buffer)


def _groups(sr: hd.sr.Comprehensive3DSR, identifier: str):
    found = [
        g for g in sr.content.get_image_measurement_groups() if g.tracking_identifier == identifier
    ]
    assert len(found) == 1, identifier
    return found[0]


def _measurements(group, name) -> list:
    return group.get_measurements(name=name)


def test_measurement_report_per_hip(images):
    sr = _reread(
        build_measurement_report(
            source_images=images,
            hips=_hips(images),
            algorithm=ALGORITHM,
            confirmed_by="Grey^Meredith",
            organization="North General",
        )
    )
    assert sr.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert isinstance(sr.content, hd.sr.MeasurementReport)
    title = sr.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("126000", "DCM")  # TID 1500
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert sr.StudyInstanceUID == images[0].StudyInstanceUID
    assert len(sr.content.get_image_measurement_groups()) == 4  # two per hip

    head = _groups(sr, "right femoral head")
    assert head.finding_type.value == codes.SCT.HeadOfFemur.value
    (site,) = head.finding_sites
    assert site.value.value == codes.SCT.HeadOfFemur.value
    assert site.laterality.value == codes.SCT.Right.value
    (volume,) = _measurements(head, codes.SCT.Volume)
    assert volume.value == pytest.approx(12000.5)
    assert volume.unit.value == "mm3" and volume.unit.scheme_designator == "UCUM"
    areas = _measurements(head, codes.SCT.Area)
    assert [a.value for a in areas] == [400.0, 600.0]  # slices without the head are left out
    assert all(a.unit.value == "mm2" for a in areas)
    assert [a.referenced_images[0].referenced_sop_instance_uid for a in areas] == [
        images[0].SOPInstanceUID,
        images[1].SOPInstanceUID,
    ]

    necrosis = _groups(sr, "right femoral head necrosis")
    assert necrosis.finding_type.value == codes.SCT.Necrosis.value
    assert necrosis.finding_sites[0].laterality.value == codes.SCT.Right.value
    assert necrosis.tracking_uid != head.tracking_uid
    (volume,) = _measurements(necrosis, codes.SCT.Volume)
    assert volume.value == pytest.approx(2400.25)
    assert [a.value for a in _measurements(necrosis, codes.SCT.Area)] == [150.5]
    (proportion,) = _measurements(necrosis, NECROTIC_PROPORTION)
    assert proportion.value == pytest.approx(0.2)
    assert (proportion.unit.value, proportion.unit.scheme_designator) == ("{ratio}", "UCUM")
    (grade,) = necrosis.get_qualitative_evaluations(name=codes.SCT.Severity)
    assert grade.value.value == codes.SCT.Moderate.value

    left = _groups(sr, "left femoral head necrosis")
    assert left.finding_sites[0].laterality.value == codes.SCT.Left.value
    (grade,) = left.get_qualitative_evaluations(name=codes.SCT.Severity)
    assert grade.value.value == codes.SCT.Absent.value
    # The algorithm (TID 4019) is named in every group, with its version.
    for group in sr.content.get_image_measurement_groups():
        texts = _texts(group[0])
        assert ALGORITHM.name in texts and ALGORITHM.version in texts


def _texts(item: Dataset) -> list[str]:
    found = [str(item.TextValue)] if "TextValue" in item else []
    for child in item.get("ContentSequence", []):
        found += _texts(child)
    return found


def _properties(measurement) -> dict[str, float]:
    """The NUM items under a measurement's HAS PROPERTIES, by code value."""
    return {
        str(item.ConceptNameCodeSequence[0].CodeValue): float(
            item.MeasuredValueSequence[0].NumericValue
        )
        for item in measurement[0].get("ContentSequence", [])
        if item.RelationshipType == "HAS PROPERTIES" and item.ValueType == "NUM"
    }


def test_the_interval_and_grade_probabilities_are_in_the_report(images):
    """The 85 % interval as the + and - range of measurement uncertainty (TID 1419) of
    the proportion; the grade probabilities as four measurements; none for a hip
    without them (the left one here)."""
    sr = _reread(
        build_measurement_report(source_images=images, hips=_hips(images), algorithm=ALGORITHM)
    )
    necrosis = _groups(sr, "right femoral head necrosis")
    (proportion,) = _measurements(necrosis, NECROTIC_PROPORTION)
    ranges = _properties(proportion)
    assert ranges["371886008"] == pytest.approx(0.06)  # + range: 0.26 - 0.2
    assert ranges["371885007"] == pytest.approx(0.08)  # - range: 0.2 - 0.12
    found = {
        grade: _measurements(necrosis, code)[0].value
        for grade, code in GRADE_PROBABILITY_CODES.items()
    }
    assert found == pytest.approx({"none": 0.0, "mild": 0.2, "moderate": 0.75, "severe": 0.05})
    left = _groups(sr, "left femoral head necrosis")
    (proportion,) = _measurements(left, NECROTIC_PROPORTION)
    assert _properties(proportion) == {}
    assert all(_measurements(left, code) == [] for code in GRADE_PROBABILITY_CODES.values())


def test_stable_tracking_uids_across_exports(images):
    first, second = (
        build_measurement_report(source_images=images, hips=_hips(images), algorithm=ALGORITHM)
        for _ in range(2)
    )
    assert first.SOPInstanceUID != second.SOPInstanceUID
    uids = [
        {g.tracking_identifier: g.tracking_uid for g in sr.content.get_image_measurement_groups()}
        for sr in (_reread(first), _reread(second))
    ]
    assert uids[0] == uids[1]


def test_confirmed_by_a_person_is_the_observer_and_verifier(images):
    sr = _reread(
        build_measurement_report(
            source_images=images,
            hips=_hips(images),
            algorithm=ALGORITHM,
            confirmed_by="Grey^Meredith",
            organization="North General",
        )
    )
    (person,) = sr.content.get_observer_contexts(observer_type=codes.DCM.Person)
    assert str(person.observer_identifying_attributes.name) == "Grey^Meredith"
    (device,) = sr.content.get_observer_contexts(observer_type=codes.DCM.Device)
    assert device.observer_identifying_attributes.name == ALGORITHM.name
    assert device.observer_identifying_attributes.uid == ALGORITHM.device_uid
    assert sr.VerificationFlag == "VERIFIED"
    assert sr.CompletionFlag == "COMPLETE"
    verifier = sr.VerifyingObserverSequence[0]
    assert str(verifier.VerifyingObserverName) == "Grey^Meredith"
    assert verifier.VerifyingOrganization == "North General"


def test_unconfirmed_the_algorithm_is_the_only_observer(images):
    sr = _reread(
        build_measurement_report(source_images=images, hips=_hips(images), algorithm=ALGORITHM)
    )
    assert sr.content.get_observer_contexts(observer_type=codes.DCM.Person) == []
    (device,) = sr.content.get_observer_contexts(observer_type=codes.DCM.Device)
    assert device.observer_identifying_attributes.name == ALGORITHM.name
    assert sr.VerificationFlag == "UNVERIFIED"
    assert "VerifyingObserverSequence" not in sr


def test_unknown_side_and_no_grade(images):
    hip = HipMeasurements("unknown", 100.0, 0.0, 0.0, None)
    sr = _reread(build_measurement_report(source_images=images, hips=[hip], algorithm=ALGORITHM))
    necrosis = _groups(sr, "unknown femoral head necrosis")
    assert necrosis.finding_sites[0].laterality is None
    assert necrosis.get_qualitative_evaluations(name=codes.SCT.Severity) == []
    with pytest.raises(ValueError, match="source images"):
        build_measurement_report(source_images=[], hips=[hip], algorithm=ALGORITHM)


@pytest.mark.parametrize("confirmed_by", ["Grey^Meredith", None], ids=["verified", "unverified"])
def test_dciodvfy_finds_no_errors(images, tmp_path: Path, confirmed_by):
    sr = build_measurement_report(
        source_images=images,
        hips=_hips(images),
        algorithm=ALGORITHM,
        confirmed_by=confirmed_by,
        organization="North General",
    )
    verdict = dciodvfy(sr, tmp_path, name=f"sr-{'verified' if confirmed_by else 'unverified'}.dcm")
    assert "Comprehensive3DSR" in verdict.output
    assert verdict.errors == [], verdict.output
    # Expected: dciodvfy does not know the local (99-prefixed) coding scheme.
    assert all("99ONFH" in w for w in verdict.warnings), verdict.warnings


def test_classifications_in_the_necrosis_group(images, tmp_path: Path):
    from dataclasses import replace

    from grading.dicom.sr import EXTENT, JIC_TYPE, KERBOUL_ANGLE, KERBOUL_ONE_PLANE, STAGE

    right, left = _hips(images)
    right = replace(
        right,
        extent="B",
        jic_type="C1",
        kerboul_angle_deg=230.0,
        kerboul_partial=False,
        stage="Steinberg IVB, ARCO IIIB",
    )
    left = replace(left, kerboul_angle_deg=110.0, kerboul_partial=True, stage="no necrosis on MRI")
    sr = _reread(
        build_measurement_report(source_images=images, hips=[right, left], algorithm=ALGORITHM)
    )
    necrosis = _groups(sr, "right femoral head necrosis")
    (extent,) = necrosis.get_qualitative_evaluations(name=EXTENT)
    assert extent.value.value == "EXTB"
    (jic,) = necrosis.get_qualitative_evaluations(name=JIC_TYPE)
    assert jic.value.value == "JICC1"
    (stage,) = necrosis.get_qualitative_evaluations(name=STAGE)
    assert stage.value.meaning == "Steinberg IVB, ARCO IIIB"
    (angle,) = _measurements(necrosis, KERBOUL_ANGLE)
    assert angle.value == 230.0 and angle.unit.value == "deg"
    left_necrosis = _groups(sr, "left femoral head necrosis")
    assert _measurements(left_necrosis, KERBOUL_ANGLE) == []
    (one_plane,) = _measurements(left_necrosis, KERBOUL_ONE_PLANE)
    assert one_plane.value == 110.0
    assert left_necrosis.get_qualitative_evaluations(name=JIC_TYPE) == []
    verdict = dciodvfy(
        build_measurement_report(source_images=images, hips=[right, left], algorithm=ALGORITHM),
        tmp_path,
        name="sr-classifications.dcm",
    )
    assert verdict.errors == [], verdict.output
