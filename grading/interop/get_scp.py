"""C-GET SCP of the receiver (Query/Retrieve, Patient Root and Study Root, STUDY, SERIES and
IMAGE levels): a viewing workstation fetches a study or series of its site over its own
association, the instances going back as C-STORE sub-operations on that association.

Who may: a :class:`~grading.interop.models.RemoteAE` with ``may_retrieve``, enabled, trusted
as a sender is (from its ``address``, or over TLS with its AE title as the client
certificate's common name); never a peer let in by the receiver's default site. It gets
the studies of its own site only: a study of another site, or one that is not there,
matches nothing (Success with no sub-operations, as for a study the PACS does not hold),
so an AE learns nothing about other sites. Each study sent is audited (``study.get``,
actor the system, the calling AE title, peer, level and the instances sent) before its
first byte goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pydicom
from django.db import connection
from pydicom.dataset import Dataset

from grading.interop.selectors import remote_ae_retrieve_site, site_instances_to_get
from grading.services.audit import audit_record

logger = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
STATUS_CANCELLED = 0xFE00
STATUS_IDENTIFIER_DOES_NOT_MATCH = 0xA900
STATUS_PENDING = 0xFF00
STATUS_UNABLE_TO_PROCESS = 0xC000


@dataclass(frozen=True)
class Retriever:
    """A peer that may C-GET: its AE title, address and the site it reads."""

    site_id: int
    calling_ae: str
    address: str
    port: int


def retriever_of(
    *, calling_ae: str, address: str, port: int, tls_subject: str | None
) -> Retriever | None:
    site_id = remote_ae_retrieve_site(
        calling_ae=calling_ae, address=address, tls_subject=tls_subject
    )
    if site_id is None:
        return None
    return Retriever(site_id=site_id, calling_ae=calling_ae, address=address, port=port)


def _failed(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status


def _uids(identifier: Dataset, keyword: str) -> list[str]:
    value = identifier.get(keyword)
    if value in (None, ""):
        return []
    values = list(value) if isinstance(value, pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def c_get_answers(*, event: Any, retriever: Retriever | None) -> Iterator[Any]:
    """The ``evt.EVT_C_GET`` handler's answers: the number of sub-operations, then a
    pending status and dataset per instance (read from storage one at a time)."""
    yield from _answers(event=event, retriever=retriever)
    # In the association's thread, once every answer is out (not in a ``finally``: a
    # generator dropped half-way is closed by the garbage collector, in whatever thread
    # runs it, whose connection is not this one). The next request opens another.
    connection.close()


def _refused(code: int, comment: str) -> Iterator[Any]:
    # pynetdicom ignores every status after a count of 0 and answers Success: a refusal
    # announces one sub-operation, which the failure then reports as failed.
    yield 1
    yield _failed(code, comment), None


def _answers(*, event: Any, retriever: Retriever | None) -> Iterator[Any]:
    if retriever is None:  # an association of a sender that may not read
        calling = str(event.assoc.requestor.primitive.calling_ae_title or "").strip()
        address = event.assoc.requestor.address
        logger.warning("C-GET from %s (%s) refused: it may not retrieve", calling, address)
        audit_record(
            actor=None,
            action="dicom.get_refused",
            object_type="remote_ae",
            object_id=calling[:64],
            after={"peer": f"{address}:{event.assoc.requestor.port}", "reason": "may not retrieve"},
            client_address=address,
        )
        yield from _refused(STATUS_UNABLE_TO_PROCESS, "this AE may not retrieve")
        return
    try:
        identifier = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
        study_uids = _uids(identifier, "StudyInstanceUID")
        series_uids = _uids(identifier, "SeriesInstanceUID")
        sop_uids = _uids(identifier, "SOPInstanceUID")
    except Exception:  # noqa: BLE001 - an identifier pydicom cannot decode
        logger.warning("C-GET from %s: undecodable identifier", retriever.calling_ae)
        yield from _refused(STATUS_IDENTIFIER_DOES_NOT_MATCH, "identifier not understood")
        return
    needed = {"STUDY": study_uids, "SERIES": series_uids, "IMAGE": sop_uids}
    if level not in needed or not needed[level]:
        comment = (
            f"level {level or '(none)'} needs its UID"
            if level in needed
            else "retrieve at STUDY, SERIES or IMAGE level"
        )
        yield from _refused(STATUS_IDENTIFIER_DOES_NOT_MATCH, comment)
        return
    instances = site_instances_to_get(
        site_id=retriever.site_id,
        study_uids=study_uids,
        series_uids=series_uids if level in ("SERIES", "IMAGE") else [],
        sop_uids=sop_uids if level == "IMAGE" else [],
    )
    by_study: dict[int, list[Any]] = {}
    for instance in instances:
        by_study.setdefault(instance.series.study_id, []).append(instance)
    for items in by_study.values():
        study = items[0].series.study
        audit_record(
            actor=None,
            action="study.get",
            object_type="study",
            object_id=study.pk,
            study=study,
            after={
                "calling_ae": retriever.calling_ae,
                "peer": f"{retriever.address}:{retriever.port}",
                "level": level,
                "series": sorted({i.series.series_instance_uid for i in items}),
                "instances": len(items),
            },
            client_address=retriever.address,
        )
    logger.info(
        "C-GET from %s@%s at %s level: %d instances of %d studies",
        retriever.calling_ae,
        retriever.address,
        level,
        len(instances),
        len(by_study),
    )
    yield len(instances)
    for instance in instances:
        if event.is_cancelled:
            yield _failed(STATUS_CANCELLED, "cancelled"), None
            return
        try:
            with instance.file.open("rb") as handle:
                dataset = pydicom.dcmread(handle)
        except Exception:  # noqa: BLE001 - the others still go out
            logger.exception("C-GET: could not read the stored file of %s", instance.pk)
            # Anything but a Dataset with a pending status is one failed sub-operation to
            # pynetdicom (counted in the final response); the other instances still go.
            yield STATUS_PENDING, f"unreadable {instance.sop_instance_uid}"
            continue
        yield STATUS_PENDING, dataset
