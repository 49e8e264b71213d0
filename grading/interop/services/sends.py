"""Results back to the PACS: a send of a series' SEG, TID 1500 SR and secondary-capture
summary to a node, run (and retried with back-off) by the worker; sends on every grade
confirmation or mask change for nodes with ``send_on_confirm``."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from pydicom.dataset import Dataset

from grading.dicom.summary import build_summary_image, burn_in_text
from grading.engine.rendering import slice_overlay
from grading.interop import scu
from grading.interop.models import PacsNode, PacsSend, SendState
from grading.interop.services.common import peer_of, portal_ae
from grading.models import HipResult, Instance, Series
from grading.services.analyses import local_process_gone, worker_name
from grading.services.audit import audit_record

logger = logging.getLogger(__name__)

SEND_OBJECTS = ("seg", "sr", "summary")


def series_send_request(
    *,
    user: Any,
    series: Series,
    node: PacsNode,
    objects: list[str],
    client_address: str | None = None,
    trigger: str = "user",
) -> PacsSend:
    """Queue a C-STORE of the series' results to a node of the study's site. Only a user
    who may export the identifiable objects (not a student) asks for one."""
    from grading.services.exports import user_can_export_study

    objects = list(dict.fromkeys(objects))
    if not objects or any(o not in SEND_OBJECTS for o in objects):
        raise ValidationError({"objects": f"Some of {list(SEND_OBJECTS)}."})
    study = series.study
    if node.site_id != study.site_id:
        raise ValidationError({"node": "A PACS node of the study's own site."})
    if not user_can_export_study(user=user, study=study):
        raise PermissionDenied("You may not send this study's results.")
    from grading.interop import tasks

    with transaction.atomic():
        send = PacsSend.objects.create(
            series=series, node=node, objects_requested=objects, requested_by=user, trigger=trigger
        )
        audit_record(
            actor=user,
            action="series.send",
            object_type="series",
            object_id=series.pk,
            study=study,
            after={"send": send.pk, "node": node.name, "objects": objects, "trigger": trigger},
            client_address=client_address,
        )
        send_id = send.pk
        transaction.on_commit(lambda: tasks.pacs_send.delay(send_id=send_id))
    return send


def series_sends_on_confirmation(*, user: Any, series: Series) -> list[PacsSend]:
    """A grade was confirmed or a mask changed: send the results to each of the site's
    nodes with ``send_on_confirm``. Called inside the change's transaction, and never
    makes it fail: a send that cannot be asked for is logged and left out. A send to the
    node that is still queued is not doubled (it builds the objects when it runs, so it
    already carries this change)."""
    sends = []
    for node in PacsNode.objects.filter(site_id=series.study.site_id, send_on_confirm=True):
        if PacsSend.objects.filter(series=series, node=node, state=SendState.QUEUED).exists():
            continue
        try:
            sends.append(
                series_send_request(
                    user=user,
                    series=series,
                    node=node,
                    objects=list(SEND_OBJECTS),
                    trigger="confirmation",
                )
            )
        except (ValidationError, PermissionDenied) as exc:
            logger.warning("no send to %s after the change of series %s: %s", node, series.pk, exc)
    return sends


class SendRetry(Exception):
    """The send failed and will be tried again in ``countdown`` seconds."""

    def __init__(self, message: str, countdown: float) -> None:
        super().__init__(message)
        self.countdown = countdown


def _predecessors(send: PacsSend) -> list[dict[str, str]]:
    earlier = PacsSend.objects.filter(
        series_id=send.series_id, node_id=send.node_id, state=SendState.DONE
    ).exclude(pk=send.pk)
    return [
        item for s in earlier.order_by("created", "id") for item in s.sent if item["object"] == "sr"
    ]


def _with_predecessors(sr: Dataset, earlier: list[dict[str, str]], study_uid: str) -> Dataset:
    """PS3.3 C.17.2: the SR documents this one replaces (the earlier SRs sent)."""
    if not earlier:
        return sr
    by_series: dict[str, list[dict[str, str]]] = {}
    for item in earlier:
        by_series.setdefault(item["series_instance_uid"], []).append(item)
    study_item = Dataset()
    study_item.StudyInstanceUID = study_uid
    study_item.ReferencedSeriesSequence = []
    for series_uid, items in by_series.items():
        series_item = Dataset()
        series_item.SeriesInstanceUID = series_uid
        series_item.ReferencedSOPSequence = []
        for item in items:
            ref = Dataset()
            ref.ReferencedSOPClassUID = item["sop_class_uid"]
            ref.ReferencedSOPInstanceUID = item["sop_instance_uid"]
            series_item.ReferencedSOPSequence.append(ref)
        study_item.ReferencedSeriesSequence.append(series_item)
    sr.PredecessorDocumentsSequence = [study_item]
    return sr


def series_summary_image(*, series: Series) -> Dataset:
    """The slice with the most necrosis (current label maps), masks burned in, each hip's
    proportion and current grade printed under it, as a Secondary Capture image."""
    from grading.services.exports import _current_labelmaps, _latest_done_analysis
    from grading.services.labelmaps import labelmap_read

    analysis = _latest_done_analysis(series)
    current = _current_labelmaps(analysis)
    instances = {i.pk: i for i in Instance.objects.filter(series=series)}
    if not instances:
        raise ValidationError("The series has no images.")
    best_id, best_labels, best_count = None, None, -1
    for instance_id, row in current.items():
        labels = labelmap_read(row)
        count = int((labels == 2).sum())
        if count > best_count:
            best_id, best_labels, best_count = instance_id, labels, count
    if best_id is None or best_id not in instances:
        best_id = sorted(instances, key=lambda k: (instances[k].position or 0, k))[
            len(instances) // 2
        ]
        best_labels = None
    instance = instances[best_id]
    with instance.file.open("rb") as handle:
        source = pydicom.dcmread(handle)
    image = source.pixel_array.astype(np.float32)
    labels = best_labels if best_labels is not None else np.zeros(image.shape, np.uint8)
    scale = max(1, 512 // max(image.shape))
    lines = ["ONFH grading - research and teaching software, not a medical device"]
    for hip in HipResult.objects.filter(analysis=analysis).prefetch_related("revisions"):
        confirmed = "confirmed" if list(hip.revisions.all()) else "AI, not confirmed"
        lines.append(
            f"{hip.side.capitalize()} hip: necrosis {hip.proportion * 100:.1f} % of the head, "
            f"grade {hip.current_grade or '-'} ({confirmed})"
        )
    lines.append(f"Slice {instance.instance_number}; model {analysis.model_version}"[:90])
    rgb = burn_in_text(slice_overlay(image, labels, scale=scale), lines)
    series_uid = pydicom.uid.generate_uid(
        entropy_srcs=["onfh-summary", series.series_instance_uid, str(analysis.pk)]
    )
    return build_summary_image(
        source_image=source,
        rgb=rgb,
        series_instance_uid=str(series_uid),
        sop_instance_uid=str(pydicom.uid.generate_uid()),
    )


def _built_objects(send: PacsSend) -> list[tuple[str, Dataset]]:
    from grading.services.exports import series_seg_export, series_sr_export

    series, user = send.series, send.requested_by
    if user is None:
        raise PermissionDenied("The user who asked for the send no longer exists.")
    built: list[tuple[str, Dataset]] = []
    for kind in send.objects_requested:
        if kind == "seg":
            export = series_seg_export(user=user, series=series, client_address=None)
            built.append((kind, pydicom.dcmread(io.BytesIO(export.content))))
        elif kind == "sr":
            export = series_sr_export(user=user, series=series, client_address=None)
            sr = pydicom.dcmread(io.BytesIO(export.content))
            built.append(
                (kind, _with_predecessors(sr, _predecessors(send), series.study.study_instance_uid))
            )
        elif kind == "summary":
            built.append((kind, series_summary_image(series=series)))
    return built


def pacs_send_run(*, send_id: int) -> None:
    """Build and C-STORE a send's objects (in the worker). Idempotent: a finished or
    failed send is left alone. A failure is recorded on the send; while attempts remain
    (``ONFH_PACS_SEND_ATTEMPTS``) it raises SendRetry with the back-off
    (``ONFH_PACS_RETRY_BASE_S`` doubled per attempt, at most 10 minutes), after the last
    the send is ``failed`` and audited."""
    with transaction.atomic():
        send = (
            PacsSend.objects.select_for_update()
            .select_related("series__study", "node", "requested_by")
            .filter(pk=send_id)
            .first()
        )
        if send is None or send.state in (SendState.DONE, SendState.FAILED):
            return
        if send.state == SendState.SENDING and not _send_abandoned(
            send, now=timezone.now(), by_sweep=False
        ):
            # A second message of a send another worker is running (a resend by the sweep
            # that crossed a late original): it must not go out twice.
            logger.info(
                "send %s is being sent by %s; this message is dropped", send_id, send.worker
            )
            return
        send.state = SendState.SENDING
        send.attempts += 1
        send.worker = worker_name()
        send.save(update_fields=["state", "attempts", "worker", "updated"])
    study = send.series.study
    try:
        built = _built_objects(send)
        stored = scu.store(
            calling_ae=portal_ae(), peer=peer_of(send.node), datasets=[ds for _, ds in built]
        )
    except (scu.PacsError, ValidationError, PermissionDenied, OSError) as exc:
        message = str(exc.messages[0] if isinstance(exc, ValidationError) else exc)
        final = send.attempts >= settings.ONFH_PACS_SEND_ATTEMPTS or not isinstance(
            exc, (scu.PacsError, OSError)
        )
        with transaction.atomic():
            send.state = SendState.FAILED if final else SendState.RETRYING
            send.error = message[:2000]
            send.save(update_fields=["state", "error", "updated"])
            if final:
                audit_record(
                    actor=None,
                    action="series.send_failed",
                    object_type="series",
                    object_id=send.series_id,
                    study=study,
                    after={"send": send.pk, "attempts": send.attempts, "error": send.error},
                )
        if final:
            return
        countdown = min(settings.ONFH_PACS_RETRY_BASE_S * 2 ** (send.attempts - 1), 600.0)
        raise SendRetry(message, countdown) from exc
    sent = [
        {
            "object": kind,
            "sop_class_uid": str(ds.SOPClassUID),
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "series_instance_uid": str(ds.SeriesInstanceUID),
        }
        for kind, ds in built
        if str(ds.SOPInstanceUID) in stored
    ]
    with transaction.atomic():
        send.state = SendState.DONE
        send.error = ""
        send.sent = sent
        send.save(update_fields=["state", "error", "sent", "updated"])
        audit_record(
            actor=None,
            action="series.send_done",
            object_type="series",
            object_id=send.series_id,
            study=study,
            after={
                "send": send.pk,
                "node": send.node.name,
                "attempts": send.attempts,
                "sent": sent,
                "at": timezone.now().isoformat(),
            },
        )


# --- the sweep: sends whose worker message was lost ---------------------------------------


def _send_abandoned(send: PacsSend, *, now: datetime, by_sweep: bool) -> bool:
    """A ``sending`` send that is surely not running any more.

    - Claimed by this very process: a task runs one at a time per worker process, so a
      new message here means the old run ended; but never for the sweep, which runs in a
      thread of the worker process that may be sending it right now.
    - Claimed by a process of this host: only once that process is gone (pid checked).
      A live process may still be sending, however long it takes (the solo pool enforces
      no time limit).
    - Claimed on another host (its process cannot be checked): once it has not moved for
      longer than ``ONFH_PACS_SEND_STALE_S`` and the task's hard time limit.
    """
    if send.worker == worker_name():
        return not by_sweep
    host = send.worker.rpartition(":")[0]
    if not send.worker or host == worker_name().rpartition(":")[0]:
        return not send.worker or local_process_gone(send.worker)
    quiet_s = max(settings.ONFH_PACS_SEND_STALE_S, settings.CELERY_TASK_TIME_LIMIT)
    return send.updated < now - timedelta(seconds=quiet_s)


def pacs_sends_sweep(*, stale_after_s: float | None = None) -> list[int]:
    """Sends stuck with no progress for ``stale_after_s`` (default
    ``ONFH_PACS_SEND_STALE_S``): queued or waiting to retry with no message left to run
    them, or "sending" by a worker that is gone. Each is sent again (``series.send_requeue``
    audit event, the reason on the send), or failed with the reason once its attempts are
    used up (``series.send_failed``). Returns the ids of the sends sent again.

    Idempotent: each send is re-read under a row lock and must still be stale, and sending
    it again moves ``updated``, so a second sweep (another process) leaves it alone. A send
    that is in fact being sent is never touched (``_send_abandoned``)."""
    from grading.interop import tasks

    stale = settings.ONFH_PACS_SEND_STALE_S if stale_after_s is None else stale_after_s
    waiting = (SendState.QUEUED, SendState.RETRYING, SendState.SENDING)
    now = timezone.now()
    before = now - timedelta(seconds=stale)
    resent: list[int] = []
    for send_id in PacsSend.objects.filter(state__in=waiting, updated__lt=before).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            send = (
                PacsSend.objects.select_for_update()
                .select_related("series__study", "node")
                .filter(pk=send_id, state__in=waiting, updated__lt=before)
                .first()
            )
            if send is None:
                continue
            if send.state == SendState.SENDING and not _send_abandoned(
                send, now=now, by_sweep=True
            ):
                continue
            minutes = (now - send.updated).total_seconds() / 60
            was = SendState(send.state).label.lower()
            reason = f"no progress for {minutes:.0f} min while {was}: its worker message was lost"
            if send.state == SendState.SENDING and send.worker:
                reason += f" (worker {send.worker} stopped)"
            final = send.attempts >= settings.ONFH_PACS_SEND_ATTEMPTS
            before_state = {"state": send.state, "attempts": send.attempts, "worker": send.worker}
            if final:
                send.state = SendState.FAILED
                send.error = f"Given up after {send.attempts} attempts: {reason}."[:2000]
            else:
                send.state = SendState.QUEUED
                send.error = f"Sent again: {reason}."[:2000]
            send.worker = ""
            send.save(update_fields=["state", "error", "worker", "updated"])
            audit_record(
                actor=None,
                action="series.send_failed" if final else "series.send_requeue",
                object_type="series",
                object_id=send.series_id,
                study=send.series.study,
                before=before_state,
                after={"send": send.pk, "node": send.node.name, "state": send.state},
                reason=reason,
            )
            if not final:
                transaction.on_commit(lambda sid=send.pk: tasks.pacs_send.delay(send_id=sid))
                resent.append(send.pk)
    if resent:
        logger.warning("sent again PACS sends whose worker message was lost: %s", resent)
    return resent
