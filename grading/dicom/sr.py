"""DICOM Structured Report export: a TID 1500 Measurement Report of one MR series.

Per hip (femoral head, one side) two TID 1501 measurement groups, tied by the
hip's tracking identifier:

* ``<side> femoral head``: finding Head of femur (SCT 2812003), the head's
  volume (SCT 118565006 Volume, mm3) and its area on each slice that shows it
  (SCT 42798000 Area, mm2, referencing the slice);
* ``<side> femoral head necrosis``: finding Necrosis (SCT 6574001) at the head
  of femur, its volume and per-slice areas, the necrotic proportion of the head
  (local code ``99ONFH`` ``NECPROP``, unit UCUM ``{ratio}``, 0..1) and the grade
  as a qualitative evaluation: Severity (SCT 246112005) = Absent / Mild /
  Moderate / Severe. How sure the engine is (step 14 of docs/grading.md), when it
  said: the proportion's 85 % interval as the proportion's TID 1419 measurement
  properties (SCT 371886008 / 371885007, the + and - range of measurement
  uncertainty, so low = value - lower and high = value + upper), and the probability
  of each grade as four more measurements (local codes ``GRADEPROB-NONE`` ...,
  ``{ratio}``).

The necrosis group also carries the classifications (docs/grading.md section 5): the
combined Kerboul necrotic angle as a measurement (UCUM ``deg``; concept ``KERBOUL``, or
``KERBOUL1`` when only one plane's arc is known) and, as qualitative evaluations, the
extent (``EXTENT``: A/B/C), the JIC type (``JICTYPE``: A/B/C1/C2) and the stage
(``STAGE``: Steinberg and ARCO stages from a clinician's radiograph findings, or
"MRI-positive, radiograph needed to stage"). SNOMED CT and DCM have no concepts for these
classifications, so they use the local scheme ``99ONFH``.

Finding sites carry the laterality (SCT Right / Left) when the side is known.
Who stands behind the numbers: the algorithm is the device observer always;
when a person confirmed the grade (the latest grade revision's author) they are
the person observer and the verifying observer, and the document is VERIFIED;
otherwise it is UNVERIFIED with the algorithm as the only observer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import highdicom as hd
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from grading.dicom.seg import MANUFACTURER, AlgorithmInfo

__all__ = [
    "GRADE_CODES",
    "GRADE_PROBABILITY_CODES",
    "NECROTIC_PROPORTION",
    "HipMeasurements",
    "SliceAreas",
    "build_measurement_report",
]

# The proportion has no standard concept; a local (99-prefixed) coding scheme.
NECROTIC_PROPORTION = hd.sr.CodedConcept(
    value="NECPROP",
    scheme_designator="99ONFH",
    meaning="Necrotic proportion of femoral head volume",
)
_LOCAL_CODING_SCHEME = hd.coding_schemes.CodingSchemeIdentificationItem(
    designator="99ONFH",
    name="ONFH grading portal local codes",
    responsible_organization="ONFH grading portal",
)
GRADE_CODES: dict[str, hd.sr.CodedConcept] = {
    "none": hd.sr.CodedConcept.from_code(codes.SCT.Absent),
    "mild": hd.sr.CodedConcept.from_code(codes.SCT.Mild),
    "moderate": hd.sr.CodedConcept.from_code(codes.SCT.Moderate),
    "severe": hd.sr.CodedConcept.from_code(codes.SCT.Severe),
}


def _local(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator="99ONFH", meaning=meaning[:64])


KERBOUL_ANGLE = _local("KERBOUL", "Kerboul combined necrotic angle")
KERBOUL_ONE_PLANE = _local("KERBOUL1", "Kerboul necrotic arc, one plane")
EXTENT = _local("EXTENT", "Necrosis extent (Steinberg/ARCO)")
JIC_TYPE = _local("JICTYPE", "JIC type")
STAGE = _local("STAGE", "ONFH stage")
EXTENT_CODES = {
    "A": _local("EXTA", "Extent A (< 15 %)"),
    "B": _local("EXTB", "Extent B (15-30 %)"),
    "C": _local("EXTC", "Extent C (> 30 %)"),
}
JIC_CODES = {t: _local(f"JIC{t}", f"JIC type {t}") for t in ("A", "B", "C1", "C2")}
_DEGREE = hd.sr.CodedConcept(value="deg", scheme_designator="UCUM", meaning="degree")


def stage_code(text: str) -> hd.sr.CodedConcept:
    """A local code for a stage text (``"Steinberg IVB, ARCO IIIB"``, or the MRI-only one)."""
    value = "STG-" + "".join(c for c in text.upper() if c.isalnum())[:12]
    return _local(value, text)


GRADE_PROBABILITY_CODES: dict[str, hd.sr.CodedConcept] = {
    grade: hd.sr.CodedConcept(
        value=f"GRADEPROB-{grade.upper()}",
        scheme_designator="99ONFH",
        meaning=f"Probability of Steinberg extent grade {grade}",
    )
    for grade in ("none", "mild", "moderate", "severe")
}
_MAGNETIC_RESONANCE_IMAGING = hd.sr.CodedConcept(
    value="113091000", scheme_designator="SCT", meaning="Magnetic resonance imaging"
)
_LATERALITY = {"right": codes.SCT.Right, "left": codes.SCT.Left}


@dataclass(frozen=True)
class SliceAreas:
    """One hip on one slice: areas in mm²."""

    sop_instance_uid: str
    head_area_mm2: float
    necrosis_area_mm2: float


@dataclass(frozen=True)
class HipMeasurements:
    """One femoral head over a series. Volumes in mm³, proportion 0..1,
    grade one of ``none``, ``mild``, ``moderate``, ``severe`` (or None)."""

    side: str  # "right" | "left" | "unknown"
    head_volume_mm3: float
    necrosis_volume_mm3: float
    proportion: float
    grade: str | None
    slice_areas: tuple[SliceAreas, ...] = field(default=())
    proportion_interval: tuple[float, float] | None = None
    """The 85 % interval of ``proportion`` (the engine's; None when it gave none)."""
    grade_probabilities: dict[str, float] | None = None
    # Classifications (docs/grading.md section 5); None: not known.
    extent: str | None = None
    jic_type: str | None = None
    kerboul_angle_deg: float | None = None
    kerboul_partial: bool | None = None
    stage: str | None = None


def _finding_site(side: str) -> hd.sr.FindingSite:
    laterality = _LATERALITY.get(side)
    return hd.sr.FindingSite(anatomic_location=codes.SCT.HeadOfFemur, laterality=laterality)


def _volume(value_mm3: float) -> hd.sr.Measurement:
    return hd.sr.Measurement(
        name=codes.SCT.Volume, value=float(value_mm3), unit=codes.UCUM.CubicMillimeter
    )


def _area(value_mm2: float, image: Dataset) -> hd.sr.Measurement:
    return hd.sr.Measurement(
        name=codes.SCT.Area,
        value=float(value_mm2),
        unit=codes.UCUM.SquareMillimeter,
        referenced_images=[hd.sr.SourceImageForMeasurement.from_source_image(image)],
    )


def _proportion(hip: HipMeasurements) -> hd.sr.Measurement:
    """The necrotic proportion, with its interval as the range of measurement uncertainty."""
    properties = None
    if hip.proportion_interval is not None:
        low, high = hip.proportion_interval
        properties = hd.sr.MeasurementProperties(
            upper_measurement_uncertainty=max(float(high) - float(hip.proportion), 0.0),
            lower_measurement_uncertainty=max(float(hip.proportion) - float(low), 0.0),
        )
    return hd.sr.Measurement(
        name=NECROTIC_PROPORTION,
        value=float(hip.proportion),
        unit=codes.UCUM.Ratio,
        properties=properties,
    )


def _grade_probabilities(hip: HipMeasurements) -> list[hd.sr.Measurement]:
    probabilities = hip.grade_probabilities or {}
    return [
        hd.sr.Measurement(name=code, value=float(probabilities[grade]), unit=codes.UCUM.Ratio)
        for grade, code in GRADE_PROBABILITY_CODES.items()
        if grade in probabilities
    ]


def _hip_groups(
    hip: HipMeasurements,
    *,
    series_instance_uid: str,
    images: dict[str, Dataset],
    algorithm_id: hd.sr.AlgorithmIdentification,
) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    name = f"{hip.side} femoral head"
    # Stable per series and side: the same hip keeps its UID across exports.
    tracking_uid = str(
        pydicom.uid.generate_uid(entropy_srcs=["onfh-hip", series_instance_uid, hip.side])
    )
    head_areas = [
        _area(a.head_area_mm2, images[a.sop_instance_uid])
        for a in hip.slice_areas
        if a.head_area_mm2 > 0 and a.sop_instance_uid in images
    ]
    necrosis_areas = [
        _area(a.necrosis_area_mm2, images[a.sop_instance_uid])
        for a in hip.slice_areas
        if a.necrosis_area_mm2 > 0 and a.sop_instance_uid in images
    ]
    head = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier=name),
        finding_category=codes.SCT.AnatomicalStructure,
        finding_type=codes.SCT.HeadOfFemur,
        finding_sites=[_finding_site(hip.side)],
        algorithm_id=algorithm_id,
        measurements=[_volume(hip.head_volume_mm3), *head_areas],
    )
    evaluations = []
    if hip.grade in GRADE_CODES:
        evaluations.append(
            hd.sr.QualitativeEvaluation(name=codes.SCT.Severity, value=GRADE_CODES[hip.grade])
        )
    if hip.extent in EXTENT_CODES:
        evaluations.append(hd.sr.QualitativeEvaluation(name=EXTENT, value=EXTENT_CODES[hip.extent]))
    if hip.jic_type in JIC_CODES:
        evaluations.append(
            hd.sr.QualitativeEvaluation(name=JIC_TYPE, value=JIC_CODES[hip.jic_type])
        )
    if hip.stage:
        evaluations.append(hd.sr.QualitativeEvaluation(name=STAGE, value=stage_code(hip.stage)))
    angles = []
    if hip.kerboul_angle_deg is not None:
        angles.append(
            hd.sr.Measurement(
                name=KERBOUL_ONE_PLANE if hip.kerboul_partial else KERBOUL_ANGLE,
                value=float(hip.kerboul_angle_deg),
                unit=_DEGREE,
            )
        )
    necrosis = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=str(
                pydicom.uid.generate_uid(
                    entropy_srcs=["onfh-necrosis", series_instance_uid, hip.side]
                )
            ),
            identifier=f"{name} necrosis",
        ),
        finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        finding_type=codes.SCT.Necrosis,
        finding_sites=[_finding_site(hip.side)],
        algorithm_id=algorithm_id,
        measurements=[
            _volume(hip.necrosis_volume_mm3),
            *necrosis_areas,
            _proportion(hip),
            *_grade_probabilities(hip),
            *angles,
        ],
        qualitative_evaluations=evaluations or None,
    )
    return [head, necrosis]


def build_measurement_report(
    *,
    source_images: Sequence[Dataset],
    hips: Sequence[HipMeasurements],
    algorithm: AlgorithmInfo,
    confirmed_by: str | None = None,
    organization: str | None = None,
    series_number: int = 901,
    instance_number: int = 1,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A Comprehensive 3D SR holding a TID 1500 Measurement Report of one series.

    ``source_images``: the series' MR datasets (pixel data not needed), the
    evidence; ``hips``: per-hip areas (mm²), volumes (mm³), proportion and grade;
    ``confirmed_by``: DICOM PN (``Family^Given``) of the person who confirmed the
    grades, or None when only the algorithm stands behind them; ``organization``:
    their site (required by DICOM for a verified document).
    """
    if not source_images:
        raise ValueError("a measurement report needs its source images")
    series_uid = str(source_images[0].SeriesInstanceUID)
    algorithm_id = hd.sr.AlgorithmIdentification(
        name=algorithm.name, version=algorithm.version or "unknown"
    )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=algorithm.device_uid,
            name=algorithm.name,
            manufacturer_name=MANUFACTURER,
            model_name=(algorithm.version or "unknown")[:64],
        ),
    )
    person = (
        hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=confirmed_by
            ),
        )
        if confirmed_by
        else None
    )
    images = {str(ds.SOPInstanceUID): ds for ds in source_images}
    groups = [
        group
        for hip in hips
        for group in _hip_groups(
            hip, series_instance_uid=series_uid, images=images, algorithm_id=algorithm_id
        )
    ]
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_person_context=person, observer_device_context=device
        ),
        procedure_reported=_MAGNETIC_RESONANCE_IMAGING,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    verified = bool(confirmed_by)
    return hd.sr.Comprehensive3DSR(
        evidence=list(source_images),
        content=report,
        series_instance_uid=series_instance_uid or str(pydicom.uid.generate_uid()),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or str(pydicom.uid.generate_uid()),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=verified,
        verifying_observer_name=confirmed_by if verified else None,
        verifying_organization=(organization or "unknown") if verified else None,
        series_description="ONFH measurements (research, not for diagnosis)",
        coding_schemes=[_LOCAL_CODING_SCHEME],
    )
