"""The DICOM receiver: Verification (C-ECHO), MR Storage (C-STORE) and Query/Retrieve GET
(C-GET, ``grading.interop.get_scp``) SCP on pynetdicom.

A scanner or PACS sends with C-STORE; each instance goes through the portal's own
ingest (``grading.services.ingest.file_check`` and ``checked_store``: the same checks,
deduplication by SOPInstanceUID, content-addressed storage and study/series grouping as
a browser upload) and is committed before the C-STORE response says Success, so an
acknowledged instance is stored. Per association, the receiver then writes one
``study.receive`` audit event per study (actor: the system; the calling AE title, the
peer's address and the counts) and sends the analysis of each study that got new files
once, when the association is released (or aborted: what was stored is analysed),
so a series of 200 slices is analysed once, not 200 times.

Who may send: the calling AE title must be a :class:`~grading.interop.models.RemoteAE`
(enabled; from its ``address`` when one is set); its instances are filed into that
remote AE's site. Any other peer is rejected at association time with "calling AE
title not recognised", unless the receiver was started with a default site (the
``ONFH_SCP_DEFAULT_SITE`` environment variable or ``--default-site``), which then takes
in unknown peers' instances. The called AE title must be the receiver's own.

Presentation contexts: Verification; MR Image Storage, Enhanced MR Image Storage and
Legacy Converted Enhanced MR Image Storage in every transfer syntax the DICOM layer
decodes. Any other SOP class (CT, a secondary capture...) is refused at negotiation
(abstract syntax not supported), so a sender learns before sending a byte. An instance
the ingest refuses (no pixel spacing, not MR...) answers 0xC000 "cannot
understand" with the reason as ErrorComment; one the ingest refuses for this site (its
series belongs to another study of the site) answers 0x0124 "not authorised"; UIDs are
unique per site, so another site's copy never blocks it; a storage or database failure
0xA700 "out of resources" (the sender may try again).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    LegacyConvertedEnhancedMRImageStorage,
    MRImageStorage,
    RLELossless,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from grading.dicom.reader import DicomReadError
from grading.interop.get_scp import Retriever, c_get_answers, retriever_of
from grading.models import Site
from grading.services.arrivals import SeriesArrivals
from grading.services.audit import audit_record
from grading.services.ingest import (
    IngestReport,
    checked_store,
    file_check,
    studies_analysis_schedule,
)

logger = logging.getLogger(__name__)

STORAGE_SOP_CLASSES = (
    MRImageStorage,
    EnhancedMRImageStorage,
    LegacyConvertedEnhancedMRImageStorage,
)
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]

STATUS_SUCCESS = 0x0000
STATUS_NOT_AUTHORISED = 0x0124
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

# A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE not recognised.
_REJECT_CALLING_AE = (0x01, 0x01, 0x03)


@dataclass
class Sender:
    """Where a peer's instances go: resolved once, when it asks for an association."""

    site_id: int
    calling_ae: str
    called_ae: str
    address: str
    port: int
    report: IngestReport = field(default_factory=IngestReport)
    rejected: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    # The series this association brings, marked as arriving until it ends, so that
    # none is graded half-way (``grading.services.arrivals``).
    arrivals: SeriesArrivals | None = None
    # Set when the peer may also C-GET its site's studies (``grading.interop.get_scp``).
    retriever: Retriever | None = None


def _addresses_of(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()


def sender_site(
    *,
    calling_ae: str,
    address: str,
    default_site: Site | None,
    tls_subject: str | None = None,
) -> Site | None:
    """The site a calling AE's instances go to, or None to reject the association.

    A :class:`RemoteAE` is accepted from its ``address`` only; one without an address
    only over TLS, when the client certificate (verified against the receiver's CA) names
    the AE title as its common name (``tls_subject``). A :class:`PacsNode` (the answers
    to a C-MOVE) is accepted from its host's addresses. Anyone else goes to the default
    site when the receiver has one, else is rejected.
    """
    from grading.interop.models import PacsNode, RemoteAE

    title = calling_ae.strip()
    remote = RemoteAE.objects.select_related("site").filter(ae_title=title, enabled=True).first()
    if remote is not None:
        if remote.address:
            return remote.site if remote.address == address else None
        if tls_subject is not None and tls_subject == title:
            return remote.site
        logger.warning(
            "remote AE %s has no address and did not present a client certificate for it: "
            "rejected (give it an address, or run the receiver with TLS)",
            title,
        )
        return None
    for node in PacsNode.objects.select_related("site").filter(ae_title=title):
        if address in _addresses_of(node.host):
            return node.site
    return default_site


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]  # LO
    return status


def _client_certificate_name(assoc: Any) -> str | None:
    """The common name of the peer's verified client certificate, if it came over TLS."""
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def server_ssl_context(*, cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """TLS for the receiver: its certificate and key, and client certificates required,
    verified against ``client_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certfile=cert, keyfile=key)
    return context


class StorageSCP:
    """The receiver. ``start()`` listens in the background (tests, the benchmark),
    ``serve_forever()`` blocks (the management command); ``stop()`` closes it."""

    def __init__(
        self,
        *,
        ae_title: str = "ONFH",
        host: str = "127.0.0.1",
        port: int = 11112,
        default_site: Site | None = None,
        max_associations: int = 10,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.host = host
        self.port = port
        self.default_site = default_site
        self.ssl_context = ssl_context
        self._server: Any = None
        self._lock = threading.Lock()
        self.ae = AE(ae_title=ae_title)
        self.ae.require_called_aet = True
        self.ae.maximum_associations = max_associations
        self.ae.maximum_pdu_size = 0  # no limit: fewer, bigger P-DATA PDUs
        self.ae.acse_timeout = 30
        self.ae.dimse_timeout = 60
        self.ae.network_timeout = 120
        self.ae.add_supported_context(
            Verification, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
        )
        for sop_class in STORAGE_SOP_CLASSES:
            # scu_role/scp_role: a C-GET peer proposes to be the storage SCP on these
            # contexts (SCP/SCU role selection) and gets its instances over them.
            self.ae.add_supported_context(
                sop_class, TRANSFER_SYNTAXES, scu_role=True, scp_role=True
            )
        for sop_class in (
            PatientRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelGet,
        ):
            self.ae.add_supported_context(
                sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
            )
        self.handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
        ]

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        self._server = self.ae.start_server(
            (self.host, self.port),
            block=False,
            evt_handlers=self.handlers,
            ssl_context=self.ssl_context,
        )
        self.port = self._server.server_address[1]

    def serve_forever(self) -> None:
        self.ae.start_server(
            (self.host, self.port),
            block=True,
            evt_handlers=self.handlers,
            ssl_context=self.ssl_context,
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # --- events -------------------------------------------------------------------------

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        rq = assoc.requestor
        primitive = rq.primitive
        calling = str(primitive.calling_ae_title or "").strip()
        called = str(primitive.called_ae_title or "").strip()
        address = rq.address
        try:
            site = sender_site(
                calling_ae=calling,
                address=address,
                default_site=self.default_site,
                tls_subject=_client_certificate_name(assoc),
            )
        except Exception:
            connection.close()
            raise
        if site is None:
            connection.close()  # this association's thread ends here
            logger.warning(
                "association from %s (%s) rejected: unknown calling AE", calling, address
            )
            assoc.acse.send_reject(*_REJECT_CALLING_AE)
            # As pynetdicom's own rejections do: wait until the A-ASSOCIATE-RJ is out
            # before the connection is closed.
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
        assoc.onfh_sender = Sender(
            site_id=site.pk,
            calling_ae=calling,
            called_ae=called,
            address=address,
            port=rq.port,
            retriever=retriever_of(
                calling_ae=calling,
                address=address,
                port=rq.port,
                tls_subject=_client_certificate_name(assoc),
            ),
        )

    def _on_echo(self, event: Any) -> int:
        return STATUS_SUCCESS

    def _on_get(self, event: Any) -> Any:
        sender: Sender | None = getattr(event.assoc, "onfh_sender", None)
        return c_get_answers(event=event, retriever=sender.retriever if sender else None)

    def _on_store(self, event: Any) -> Dataset | int:
        sender: Sender | None = getattr(event.assoc, "onfh_sender", None)
        if sender is None:  # cannot happen: the association was rejected
            return STATUS_NOT_AUTHORISED
        # The bytes as received (File Meta added, nothing decoded and re-encoded).
        data = bytes(event.encoded_dataset(include_meta=True))
        sop_uid = str(event.request.AffectedSOPInstanceUID or "")
        name = f"{sender.calling_ae}@{sender.address}/{sop_uid}"
        try:
            item = file_check(name=name, data=data)
        except DicomReadError as exc:
            sender.rejected += 1
            logger.info("C-STORE from %s refused: %s", sender.calling_ae, exc.reason)
            return _status(STATUS_CANNOT_UNDERSTAND, exc.reason)
        except Exception as exc:  # noqa: BLE001 - one odd instance never stops the association
            sender.rejected += 1
            logger.exception("C-STORE from %s: unexpected error", sender.calling_ae)
            return _status(STATUS_CANNOT_UNDERSTAND, f"unreadable ({exc})")
        if sender.arrivals is None:
            sender.arrivals = SeriesArrivals(site=Site(pk=sender.site_id), receiver="association")
        sender.arrivals.mark(item.series_instance_uid)
        report = sender.report
        rejected_before = len(report.rejected)
        try:
            checked_store(
                user=None,
                site=Site(pk=sender.site_id),
                checked=[item],
                report=report,
                client_address=sender.address,
                audit=False,
                schedule=False,
            )
        except Exception as exc:  # noqa: BLE001 - the sender may try again
            logger.exception("C-STORE from %s: could not store %s", sender.calling_ae, sop_uid)
            return _status(STATUS_OUT_OF_RESOURCES, f"not stored ({type(exc).__name__})")
        if len(report.rejected) > rejected_before:
            sender.rejected += 1
            return _status(STATUS_NOT_AUTHORISED, report.rejected[-1].reason)
        return STATUS_SUCCESS

    def _on_end(self, event: Any) -> None:
        """Released, aborted, or the connection closed (whichever is seen first). The
        connection may close (in the network thread) before the association's own thread
        has marked it released, so the work is done in the association's thread, or
        after it has ended: then ``is_released`` is final."""
        assoc = event.assoc
        if getattr(assoc, "onfh_sender", None) is None:
            return
        if threading.current_thread() is assoc:
            self._finish(assoc)
        else:
            threading.Thread(
                target=self._finish_after, args=(assoc,), name="scp-finish", daemon=True
            ).start()

    def _finish_after(self, assoc: Any) -> None:
        assoc.join(timeout=120)
        self._finish(assoc)

    def _finish(self, assoc: Any) -> None:
        sender: Sender = assoc.onfh_sender
        with self._lock:
            if sender.finished:
                return
            sender.finished = True
        try:
            association_finish(sender=sender, released=bool(assoc.is_released))
        except Exception:  # noqa: BLE001 - logged; the stored rows stay
            logger.exception("could not audit/schedule the association from %s", sender.calling_ae)
        finally:
            connection.close()


def association_finish(*, sender: Sender, released: bool) -> list[int]:
    """One ``study.receive`` audit event per study the association touched, and the
    analysis of each study that got new instances, sent after the commit. Returns the
    ids of the studies whose analysis was sent."""
    try:
        return _association_finish(sender=sender, released=released)
    finally:
        if sender.arrivals is not None:
            sender.arrivals.end()


def _association_finish(*, sender: Sender, released: bool) -> list[int]:
    report = sender.report
    if not report.summaries and not sender.rejected:
        return []
    seconds = round(time.monotonic() - sender.started, 3)
    with transaction.atomic():
        for study in report.studies:
            summary = report.summaries.get(study.pk)
            if summary is None:
                continue
            audit_record(
                actor=None,
                action="study.receive",
                object_type="study",
                object_id=study.pk,
                study=study,
                after={
                    **summary,
                    "calling_ae": sender.calling_ae,
                    "called_ae": sender.called_ae,
                    "peer": f"{sender.address}:{sender.port}",
                    "association": "released" if released else "aborted or closed",
                    "seconds": seconds,
                },
                client_address=sender.address,
            )
        to_analyse = [pk for pk, summary in report.summaries.items() if summary["stored"]]
        studies_analysis_schedule(study_ids=to_analyse)
    logger.info(
        "association from %s@%s: %d stored, %d duplicates, %d refused in %.2f s",
        sender.calling_ae,
        sender.address,
        report.stored,
        report.duplicates,
        sender.rejected,
        seconds,
    )
    return to_analyse
