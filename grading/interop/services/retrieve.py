"""Query/retrieve: C-FIND of a patient's studies on a node, C-MOVE of one to the
portal's receiver (in the worker), both audited with the user."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from grading.interop import scu
from grading.interop.models import PacsNode
from grading.interop.services.common import may_use, peer_of, portal_ae
from grading.models import Study
from grading.services.audit import audit_record


def pacs_studies_find(
    *, user: Any, node: PacsNode, patient_id: str, client_address: str | None = None
) -> list[dict[str, Any]]:
    """The patient's studies on the node (C-FIND, study level), each with
    ``already_here``: the node's site has that study. Audited (``pacs.query``) whether it
    worked or not; a PACS that cannot be reached raises ValidationError."""
    patient_id = patient_id.strip()
    if not patient_id or "*" in patient_id or "?" in patient_id:
        raise ValidationError({"PatientID": "One patient ID, without wildcards."})
    if not may_use(user=user, site_id=node.site_id):
        raise PermissionDenied("You may not query this PACS.")
    error = ""
    found: list[scu.FoundStudy] = []
    try:
        found = scu.find_studies(calling_ae=portal_ae(), peer=peer_of(node), patient_id=patient_id)
    except scu.PacsError as exc:
        error = str(exc)
    audit_record(
        actor=user,
        action="pacs.query",
        object_type="pacs_node",
        object_id=node.pk,
        after={"PatientID": patient_id, "matches": len(found), "error": error or None},
        client_address=client_address,
    )
    if error:
        raise ValidationError({"detail": f"The PACS did not answer: {error}"})
    here = set(
        Study.objects.filter(
            site=node.site, study_instance_uid__in=[f.study_instance_uid for f in found]
        ).values_list("study_instance_uid", flat=True)
    )
    answer = []
    for f in sorted(found, key=lambda f: (f.study_date, f.study_instance_uid), reverse=True):
        row = asdict(f)
        row["modalities"] = list(f.modalities)
        row["already_here"] = f.study_instance_uid in here
        answer.append(row)
    return answer


def pacs_study_retrieve_request(
    *, user: Any, node: PacsNode, study_instance_uid: str, client_address: str | None = None
) -> None:
    """Audit the request and send the C-MOVE to the worker (answered 202)."""
    study_instance_uid = study_instance_uid.strip()
    if not study_instance_uid or len(study_instance_uid) > 64:
        raise ValidationError({"study_instance_uid": "A Study Instance UID."})
    if any(c not in "0123456789." for c in study_instance_uid):
        raise ValidationError({"study_instance_uid": "A DICOM UID has digits and dots only."})
    if not may_use(user=user, site_id=node.site_id):
        raise PermissionDenied("You may not retrieve from this PACS.")
    from grading.interop import tasks

    with transaction.atomic():
        audit_record(
            actor=user,
            action="pacs.retrieve",
            object_type="pacs_node",
            object_id=node.pk,
            after={"study_instance_uid": study_instance_uid, "state": "requested"},
            client_address=client_address,
        )
        node_id, user_id = node.pk, user.pk
        transaction.on_commit(
            lambda: tasks.pacs_retrieve.delay(
                node_id=node_id, study_instance_uid=study_instance_uid, user_id=user_id
            )
        )


def pacs_study_retrieve(*, node_id: int, study_instance_uid: str, user_id: int | None) -> None:
    """The C-MOVE (in the worker): the PACS sends the study to the portal's receiver.
    The outcome is audited with the user who asked; a PACS error is recorded, not
    raised (the user sees it in the audit; asking again is the retry)."""
    from django.contrib.auth import get_user_model

    node = PacsNode.objects.filter(pk=node_id).first()
    if node is None:
        return
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    after: dict[str, Any] = {"study_instance_uid": study_instance_uid}
    try:
        result = scu.move_study(
            calling_ae=portal_ae(),
            peer=peer_of(node),
            study_instance_uid=study_instance_uid,
            destination_ae=portal_ae(),
        )
        after.update(state="done", **asdict(result))
    except scu.PacsError as exc:
        after.update(state="failed", error=str(exc))
    study = Study.objects.filter(site=node.site, study_instance_uid=study_instance_uid).first()
    audit_record(
        actor=user,
        action="pacs.retrieve_done",
        object_type="pacs_node",
        object_id=node.pk,
        study=study,
        after=after,
    )
