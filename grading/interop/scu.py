"""The portal as a DICOM client of a PACS (pynetdicom): C-FIND of a patient's studies,
C-MOVE of a study to the portal's own receiver, C-STORE of result objects.

No Django here: the services pass the node's address and the portal's AE title, and
turn :class:`PacsError` into an answer for the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

# Pending (0xFF00, 0xFF01), success, and the warning of a C-MOVE with failures (0xB000).
_PENDING = {0xFF00, 0xFF01}
_TIMEOUT_S = 30


class PacsError(Exception):
    """The PACS could not be reached, refused the association, or answered a failure."""


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int


@dataclass(frozen=True)
class FoundStudy:
    study_instance_uid: str
    patient_id: str
    study_date: str  # YYYYMMDD, or "" when the PACS has none
    study_description: str
    modalities: tuple[str, ...]
    number_of_series: int | None


@dataclass(frozen=True)
class MoveResult:
    completed: int
    failed: int
    warning: int


def _ae(calling_ae: str) -> AE:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = _TIMEOUT_S
    ae.dimse_timeout = 600
    ae.network_timeout = _TIMEOUT_S
    ae.connection_timeout = _TIMEOUT_S
    return ae


def _associate(ae: AE, peer: Peer) -> Any:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise PacsError(
            f"could not open an association with {peer.ae_title} at {peer.host}:{peer.port} "
            "(refused, or nothing listens there)"
        )
    return assoc


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return str(value or "").strip()


def find_studies(*, calling_ae: str, peer: Peer, patient_id: str) -> list[FoundStudy]:
    """C-FIND, Study Root, study level: the studies of ``patient_id`` on ``peer``."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient_id
    for keyword in (
        "StudyInstanceUID",
        "StudyDate",
        "StudyDescription",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
    ):
        setattr(query, keyword, "")
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, peer)
    found: list[FoundStudy] = []
    try:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            code = int(getattr(status, "Status", -1)) if status else -1
            if code in _PENDING and identifier is not None:
                modalities = identifier.get("ModalitiesInStudy", "") or ""
                if isinstance(modalities, str):
                    modalities = [m for m in modalities.split("\\") if m]
                series = identifier.get("NumberOfStudyRelatedSeries", None)
                found.append(
                    FoundStudy(
                        study_instance_uid=_text(identifier, "StudyInstanceUID"),
                        patient_id=_text(identifier, "PatientID"),
                        study_date=_text(identifier, "StudyDate"),
                        study_description=_text(identifier, "StudyDescription"),
                        modalities=tuple(sorted(str(m) for m in modalities)),
                        number_of_series=int(series) if series not in (None, "") else None,
                    )
                )
            elif code != 0x0000:
                raise PacsError(f"C-FIND failed (status 0x{code & 0xFFFF:04X})")
    finally:
        assoc.release()
    return [f for f in found if f.study_instance_uid]


def move_study(
    *, calling_ae: str, peer: Peer, study_instance_uid: str, destination_ae: str
) -> MoveResult:
    """C-MOVE, Study Root, study level: ``peer`` sends the study to ``destination_ae``
    (the portal's receiver, which the PACS must know by that AE title). Returns the
    final sub-operation counts; raises PacsError when the move fails outright."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_instance_uid
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = _associate(ae, peer)
    last: Dataset | None = None
    try:
        for status, _ in assoc.send_c_move(
            identifier, destination_ae, StudyRootQueryRetrieveInformationModelMove
        ):
            if status:
                last = status
    finally:
        assoc.release()
    if last is None:
        raise PacsError("C-MOVE: no answer (the association was aborted)")
    code = int(last.Status)
    result = MoveResult(
        completed=int(last.get("NumberOfCompletedSuboperations", 0) or 0),
        failed=int(last.get("NumberOfFailedSuboperations", 0) or 0),
        warning=int(last.get("NumberOfWarningSuboperations", 0) or 0),
    )
    if code not in (0x0000, 0xB000):
        comment = _text(last, "ErrorComment")
        raise PacsError(
            f"C-MOVE failed (status 0x{code:04X}{': ' + comment if comment else ''}; "
            f"does the PACS know the destination {destination_ae}?)"
        )
    return result


def store(*, calling_ae: str, peer: Peer, datasets: Sequence[Dataset]) -> list[str]:
    """C-STORE each dataset (in its own transfer syntax) in one association. Returns the
    SOP Instance UIDs stored; raises PacsError at the first refusal."""
    ae = _ae(calling_ae)
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        syntaxes = {
            str(ds.file_meta.TransferSyntaxUID) for ds in datasets if ds.SOPClassUID == sop_class
        }
        ae.add_requested_context(
            sop_class, sorted(syntaxes | {ExplicitVRLittleEndian, ImplicitVRLittleEndian})
        )
    assoc = _associate(ae, peer)
    stored: list[str] = []
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = int(getattr(status, "Status", -1)) if status else -1
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise PacsError(
                    f"C-STORE of {ds.SOPClassUID.name} refused"
                    + (f" (status 0x{code:04X})" if code >= 0 else " (no answer)")
                )
            stored.append(str(ds.SOPInstanceUID))
    finally:
        if assoc.is_established:
            assoc.release()
    return stored
