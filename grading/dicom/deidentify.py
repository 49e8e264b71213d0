"""De-identify a DICOM data set for a teaching case: PS3.15 Annex E, Basic Application
Level Confidentiality Profile, with the Retain Longitudinal Temporal Information Modified
Dates option (dates shifted, not removed).

The generic rules come from ``dicognito`` (every UI that is not a class or transfer syntax
UID remapped through a keyed hash, every DA/DT shifted, names, IDs, addresses and
equipment replaced); this module adds what the basic profile asks for beyond it:

- names: PatientName becomes the case's pseudonym (``Case^7``), every other PN is emptied;
- IDs: PatientID becomes the pseudonym, AccessionNumber and StudyID are emptied;
- PatientBirthDate and PatientSex are emptied (Z), age, size, weight, addresses, comments,
  descriptions, institution and physician details, referenced studies and request
  attributes are removed (X);
- dates are shifted by a whole number of days given by the caller (one offset per teaching
  collection, so the intervals between a collection's studies stay true);
- private tags, overlays (60xx) and curves (50xx) are removed;
- PatientIdentityRemoved = YES, LongitudinalTemporalInformationModified = MODIFIED,
  DeidentificationMethod and DeidentificationMethodCodeSequence (CID 7050: 113100 and
  113107) are added.

Pixel data, geometry (spacing, orientation, position) and the image pixel module are
kept bit for bit. The same ``key.seed`` maps the same source UID to the same new UID, so
UIDs are consistent within a collection and differ across collections. The seed is a
secret: with it the mapping could be tested against known UIDs, without it it cannot.

No Django here (``grading/dicom`` is below the portal).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from dicognito.anonymizer import Anonymizer
from dicognito.datetimeanonymizer import DateTimeAnonymizer
from dicognito.uianonymizer import UIAnonymizer
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

# Type 1/2 attributes kept but emptied (Z in Table E.1-1).
_EMPTIED = (
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
)

# Attributes removed (X, X/Z, X/D in Table E.1-1) that dicognito replaces or keeps.
_REMOVED = (
    "PatientBirthTime",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientAddress",
    "PatientBirthName",
    "PatientMotherBirthName",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "IssuerOfPatientID",
    "MedicalRecordLocator",
    "EthnicGroup",
    "Occupation",
    "PatientComments",
    "AdditionalPatientHistory",
    "PatientReligiousPreference",
    "MilitaryRank",
    "BranchOfService",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientTelephoneNumbers",
    "PatientTelecomInformation",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "MedicalAlerts",
    "Allergies",
    "SmokingStatus",
    "PregnancyStatus",
    "LastMenstrualDate",
    "SpecialNeeds",
    "PatientState",
    "PatientInsurancePlanCodeSequence",
    "ReferencedPatientSequence",
    "ReferencedPatientPhotoSequence",
    "ReferencedStudySequence",
    "ReferencedPerformedProcedureStepSequence",
    "RequestAttributesSequence",
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "StudyComments",
    "AcquisitionComments",
    "DerivationDescription",
    "AdmittingDiagnosesDescription",
    "RequestedProcedureDescription",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepID",
    "ProtocolName",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "PerformedLocation",
    "ScheduledProcedureStepLocation",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "PhysiciansOfRecord",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "RequestingService",
    "CurrentPatientLocation",
    "FrameComments",
)

BASIC_PROFILE = ("113100", "DCM", "Basic Application Confidentiality Profile")
MODIFIED_DATES = (
    "113107",
    "DCM",
    "Retain Longitudinal Temporal Information Modified Dates Option",
)
RETAIN_UIDS = ("113110", "DCM", "Retain UIDs Option")
METHOD_TEXT = "PS3.15 E.1 Basic Profile, Modified Dates Option"  # LO: 64 chars at most
METHOD_TEXT_UIDS_KEPT = "PS3.15 E.1 Basic Profile, Modified Dates, Retain UIDs"


@dataclass(frozen=True)
class DeidentificationKey:
    """What makes one collection's copies consistent with each other.

    ``seed``: a secret string (the UID mapping is a keyed hash of it).
    ``date_offset_days``: whole days added to every date (negative: earlier).
    """

    seed: str
    date_offset_days: int


def _code_item(code: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def _empty_other_person_names(ds: Dataset) -> None:
    """Every PN but PatientName emptied, in nested sequences too (operators, physicians,
    content creators, verifying observers: all Z or X in the basic profile)."""

    def visit(dataset: Dataset, element: DataElement) -> None:
        if element.VR == "PN" and element.keyword != "PatientName":
            element.value = ""

    ds.walk(visit)


def _remove_listed(ds: Dataset) -> None:
    for keyword in _REMOVED:
        if keyword in ds:
            delattr(ds, keyword)
    for element in list(ds):
        if element.VR == "SQ" and isinstance(element.value, Sequence):
            for item in element.value:
                _remove_listed(item)


def _remove_overlays_and_curves(ds: Dataset) -> None:
    for tag in [t for t in ds.keys() if t.group & 0xFF00 in (0x5000, 0x6000)]:
        del ds[tag]


def deidentify_dataset(
    ds: Dataset, *, key: DeidentificationKey, pseudonym: str, retain_uids: bool = False
) -> Dataset:
    """De-identify ``ds`` in place (and return it). ``pseudonym``: e.g. ``"Case 7"``;
    it becomes PatientName (``Case^7``) and PatientID (``CASE-7``); empty, both are
    emptied.

    ``retain_uids``: the profile's Retain UIDs Option (113110): every UID stays as it
    is. For a study shown live to a student beside its results, which name the slices
    by SOPInstanceUID; a teaching copy, which outlives the source, remaps them."""
    anonymizer = Anonymizer(seed=key.seed)
    if retain_uids:
        anonymizer._element_handlers = [  # noqa: SLF001 - dicognito has no switch for it
            h
            for h in anonymizer._element_handlers
            if not isinstance(h, UIAnonymizer)  # noqa: SLF001
        ]
    # Whole days, so the times of day stay as acquired (the Modified Dates option).
    anonymizer.add_element_handler(DateTimeAnonymizer(key.date_offset_days * 24))
    ds.remove_private_tags()
    anonymizer.anonymize(ds)
    ds.remove_private_tags()
    _remove_listed(ds)
    _remove_overlays_and_curves(ds)
    _empty_other_person_names(ds)
    for keyword in _EMPTIED:
        if keyword in ds:
            setattr(ds, keyword, "")
    words = pseudonym.split()
    # No pseudonym: both emptied (Z), as for a study a student sees beside its results.
    ds.PatientName = "^".join(words)
    ds.PatientID = "-".join(w.upper() for w in words)
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.DeidentificationMethod = METHOD_TEXT_UIDS_KEPT if retain_uids else METHOD_TEXT
    codes = [BASIC_PROFILE, MODIFIED_DATES, *([RETAIN_UIDS] if retain_uids else [])]
    ds.DeidentificationMethodCodeSequence = Sequence([_code_item(c) for c in codes])
    return ds


def deidentify_bytes(
    data: bytes, *, key: DeidentificationKey, pseudonym: str, retain_uids: bool = False
) -> bytes:
    """A de-identified Part 10 file from the bytes of one (Part 10 or raw) DICOM file."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    deidentify_dataset(ds, key=key, pseudonym=pseudonym, retain_uids=retain_uids)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def remap_uid(uid: str, *, key: DeidentificationKey) -> str:
    """The UID ``deidentify_dataset`` gives ``uid`` under ``key`` (for the caller's own
    records: the case's StudyInstanceUID without reading a file back)."""
    probe = Dataset()
    probe.file_meta = FileMetaDataset()
    probe.StudyInstanceUID = uid
    Anonymizer(seed=key.seed).anonymize(probe)
    return str(probe.StudyInstanceUID)
