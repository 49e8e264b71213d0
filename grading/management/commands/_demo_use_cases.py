"""The use cases ``seed_demo`` prepares beside the phantom studies, each made through the
service a person would use (upload, analysis, teaching, consults, explanations), and
each left alone when it is there already, so that a second run changes nothing.

- worklist states: analysed (done), flagged (a noisy phantom whose grade rests on an
  ambiguous threshold), failed with its reason (a phantom one of whose stored slices is
  damaged on disk after the upload: the worker's real read error), and two studies left
  for the worker, which the worklist shows queued, then running, in the first minute
  after ``make run``;
- teaching: a collection at the demo site of one case per analysed demo study (every
  grade), the demo student enrolled, one scored attempt, the last case not tried;
- consults: an open request from the second site to the demo site, and a request of the
  demo site that the second site's clinician has answered;
- a patient explanation of DEMO-001 with a live share link, whose token is kept under
  var/ (the portal stores only its hash) so that later runs print the same link.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from grading.models import Analysis, HipResult, Instance, Series, Site, Study

Say = Callable[[str], None]

COLLECTION_TITLE = "Demo collection: grading ONFH on T1"
EXPLAINED_STUDY = "DEMO-001"
ANSWERED_STUDY = "DEMO-002"


@dataclass(frozen=True)
class DemoStudy:
    """One phantom study: its seed, per-side necrosis and what the seed does with it."""

    patient_id: str
    seed: int
    necrosis: dict[str, str]
    site: str = "demo"
    uploader: str = "demo"
    analyse: bool = True  # in this process; False leaves it queued for the worker
    damage: bool = False  # damage one stored slice before the analysis
    slices: int | None = None  # None: the command's --slices
    phantom: dict[str, Any] = field(default_factory=dict)


# The noisy phantom (SNR 6, mixed and fat-like lesions, oedema and a physeal scar) is
# one on which the engine flags the right hip's grade as resting on an ambiguous threshold.
STATE_STUDIES: list[DemoStudy] = [
    DemoStudy(
        "DEMO-005",
        302,
        {"right": "moderate", "left": "mild"},
        phantom={
            "snr": 6.0,
            "patterns": {"right": "mixed", "left": "fat_like"},
            "mimics": {"right": "oedema", "left": "physeal_scar"},
        },
    ),
    DemoStudy("DEMO-006", 106, {"right": "mild", "left": "none"}, damage=True),
    DemoStudy("DEMO-007", 107, {"right": "moderate", "left": "mild"}, analyse=False, slices=32),
    DemoStudy("DEMO-008", 108, {"right": "none", "left": "severe"}, analyse=False),
    DemoStudy(
        "SECOND-001", 201, {"right": "mild", "left": "moderate"}, "second", "second_clinician"
    ),
]


def _uids(seed: int) -> tuple[str, str]:
    import pydicom.uid

    return (
        pydicom.uid.generate_uid(entropy_srcs=["onfh-demo-study", str(seed)]),
        pydicom.uid.generate_uid(entropy_srcs=["onfh-demo-series", str(seed)]),
    )


def study_load(*, demo: DemoStudy, slices: int, say: Say) -> Study:
    """Upload the phantom through the ingest service (once)."""
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series
    from grading.services import upload_ingest

    study_uid, series_uid = _uids(demo.seed)
    user = get_user_model().objects.get(username=demo.uploader)
    site = Site.objects.get(code=demo.site)
    if not Series.objects.filter(series_instance_uid=series_uid).exists():
        with tempfile.TemporaryDirectory(prefix="onfh-demo-") as tmp:
            phantom = make_bilateral_series(
                demo.seed,
                n_slices=demo.slices or slices,
                matrix=(256, 256),
                necrosis=demo.necrosis,
                **demo.phantom,
            )
            paths = write_mr_series(
                phantom.images,
                Path(tmp),
                pixel_spacing_mm=phantom.pixel_spacing_mm,
                slice_thickness_mm=phantom.slice_thickness_mm,
                spacing_between_slices_mm=phantom.spacing_between_slices_mm,
                image_orientation=phantom.image_orientation,
                first_position=phantom.first_position,
                patient_name=f"PHANTOM^{demo.patient_id}",
                patient_id=demo.patient_id,
                study_instance_uid=study_uid,
                series_instance_uid=series_uid,
                study_date="20240115",
            )
            files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
        report = upload_ingest(user=user, site=site, files=files, client_address=None)
        say(f"  phantom study {demo.patient_id}: {report.stored} slices stored")
    return Series.objects.select_related("study").get(series_instance_uid=series_uid).study


def study_load_for_worker(*, demo: DemoStudy, slices: int, say: Say) -> Study:
    """Upload the phantom (once) and leave its analysis to the worker. A study to be
    damaged is held as still arriving (``grading.services.arrivals``) from before its
    upload until its slice is damaged, so that the worker never reads it whole."""
    from grading.services.arrivals import series_arrival_end, series_arrival_mark

    series_uid = _uids(demo.seed)[1]
    if not demo.damage or Series.objects.filter(series_instance_uid=series_uid).exists():
        return study_load(demo=demo, slices=slices, say=say)
    receiver = f"demo-seed:{uuid.uuid4().hex[:12]}"
    series_arrival_mark(
        site=Site.objects.get(code=demo.site), series_instance_uids=[series_uid], receiver=receiver
    )
    try:
        study = study_load(demo=demo, slices=slices, say=say)
        _damage_one_slice(Series.objects.get(series_instance_uid=series_uid))
    finally:
        series_arrival_end(receiver=receiver)
    return study


def studies_wait_analysed(
    *, patient_ids: list[str], timeout_s: float, say: Say, poll_s: float = 1.0
) -> dict[str, str]:
    """Wait until the worker has analysed each of these studies (done or failed); their
    statuses. ``TimeoutError`` after ``timeout_s`` (no worker, or a very slow one)."""
    from grading.models import StudyStatus

    finished = {StudyStatus.DONE, StudyStatus.FAILED}
    deadline = time.monotonic() + timeout_s
    last_said = ""
    while True:
        status = dict(
            Study.objects.filter(patient_id__in=patient_ids).values_list("patient_id", "status")
        )
        waiting = [p for p in patient_ids if status.get(p) not in finished]
        if not waiting:
            return status
        line = (
            f"  the worker is analysing the demo studies: {len(waiting)} of "
            f"{len(patient_ids)} to go"
        )
        if line != last_said:
            say(line)
            last_said = line
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the worker did not analyse {', '.join(waiting)} within {timeout_s:.0f} s "
                "(is the worker running? see its log above)"
            )
        time.sleep(poll_s)


def study_prepare(*, demo: DemoStudy, say: Say) -> None:
    """When ``demo.analyse`` and the series has no analysis yet: analyse it in this
    process through the analysis service (after damaging a slice when ``demo.damage``)."""
    series = Series.objects.select_related("study").get(series_instance_uid=_uids(demo.seed)[1])
    if demo.analyse and not Analysis.objects.filter(series=series).exists():
        if demo.damage:
            _damage_one_slice(series)
        study_analyse(study=series.study)
        series.study.refresh_from_db()
        say(f"  phantom study {demo.patient_id}: analysed ({series.study.status})")


def _damage_one_slice(series: Series) -> None:
    """Cut the middle stored slice to its first 600 bytes (a fault of the disk, after a
    good upload), so that the worker's read of it fails as it would in the clinic."""
    instances = list(Instance.objects.filter(series=series).order_by("position", "id"))
    instance = instances[len(instances) // 2]
    with default_storage.open(instance.file.name, "rb") as handle:
        head = handle.read(600)
    default_storage.delete(instance.file.name)
    saved = default_storage.save(instance.file.name, ContentFile(head))
    if saved != instance.file.name:  # pragma: no cover - the storage renamed it
        raise RuntimeError(f"storage saved {instance.file.name} as {saved}")


def study_analyse(*, study: Study) -> None:
    """Request and run each analysis of the study here (what the worker does), once its
    series are quiet (the ingest waits ``ONFH_INGEST_QUIET_S`` after the last file)."""
    from grading.services.analyses import analysis_run, study_analyses_request
    from grading.services.arrivals import series_arrival_wait_s

    for _ in range(20):
        wait = max(
            (series_arrival_wait_s(series=s) for s in Series.objects.filter(study=study)),
            default=0.0,
        )
        if wait <= 0:
            break
        time.sleep(wait + 0.05)
    for analysis in study_analyses_request(study_id=study.pk):
        analysis_run(analysis_id=analysis.pk)


def _study(patient_id: str) -> Study:
    return Study.objects.get(patient_id=patient_id)


# --- teaching ------------------------------------------------------------------------------


def teaching_prepare(*, case_studies: list[str], say: Say) -> dict[str, Any]:
    """The demo collection with one case per study, the student enrolled, and one
    attempt (grades and a necrosis mask) on the first case."""
    from grading.teaching.models import Attempt, Case, CaseInstance, Collection, Enrolment
    from grading.teaching.services import (
        _reference_labelmap,
        attempt_submit,
        case_add,
        collection_create,
        collection_enrol,
    )

    users = get_user_model().objects
    teacher, student = users.get(username="demo_teacher"), users.get(username="demo_student")
    site = Site.objects.get(code="demo")
    collection = Collection.objects.filter(site=site, title=COLLECTION_TITLE).first()
    if collection is None:
        collection = collection_create(
            user=teacher,
            site=site,
            title=COLLECTION_TITLE,
            description=(
                "Four de-identified phantom cases, one of each Steinberg extent grade. "
                "Grade each hip, mark the necrosis, then compare with the reference."
            ),
        )
        say(f"  teaching collection {collection.title!r} created")
    if not Enrolment.objects.filter(collection=collection, student=student).exists():
        collection_enrol(user=teacher, collection=collection, students=[student])
    for patient_id in case_studies:
        study = _study(patient_id)
        if not Case.objects.filter(collection=collection, source_study=study).exists():
            case = case_add(user=teacher, collection=collection, study_id=study.pk)
            say(f"  teaching case {case.number} added")
    cases = list(Case.objects.filter(collection=collection).order_by("number"))
    first = cases[0]
    if not Attempt.objects.filter(case=first, student=student).exists():
        references = {hip["side"]: hip["grade"] for hip in first.reference_hips}
        order = ["none", "mild", "moderate", "severe"]
        # One hip right, the other one grade off: a score that shows how scoring works.
        grades = dict(references)
        off_side = sorted(references)[0]
        grades[off_side] = order[min(order.index(references[off_side]) + 1, 3)]
        masks = {}
        for row in CaseInstance.objects.filter(case=first).order_by("index"):
            necrosis = _reference_labelmap(row) == 2
            if necrosis.any():
                masks[row.pk] = np.roll(necrosis, 2, axis=1)  # drawn 2 pixels off
        attempt_submit(user=student, case=first, grades=grades, masks=masks)
        say("  teaching attempt of the demo student on case 1 scored")
    return {"collection": collection, "untried": cases[-1]}


# --- consults ------------------------------------------------------------------------------


def consults_prepare(*, open_study: str, answered_study: str, say: Say) -> dict[str, Any]:
    """An open request from the second site to the demo site, and a request of the demo
    site answered by the second site's clinician."""
    from grading.consults.models import SecondOpinionRequest
    from grading.consults.services import (
        second_opinion_answer_create,
        second_opinion_request_create,
    )

    users = get_user_model().objects
    demo, second = users.get(username="demo"), users.get(username="second_clinician")
    sites = {s.code: s for s in Site.objects.filter(code__in=["demo", "second"])}
    study = _study(open_study)
    opened = SecondOpinionRequest.objects.filter(study=study, requester=second).first()
    if opened is None:
        opened = second_opinion_request_create(
            user=second,
            study=study,
            question="Is the left hip moderate or still mild? The margin looks ill-defined.",
            consultant_site=sites["demo"],
            days=30,
            client_address=None,
        )
        say("  second-opinion request from the second site to the demo site opened")
    study = _study(answered_study)
    answered = SecondOpinionRequest.objects.filter(study=study, requester=demo).first()
    if answered is None:
        answered = second_opinion_request_create(
            user=demo,
            study=study,
            question="Would you call the left hip severe? I would like a second reading.",
            consultant_site=sites["second"],
            days=30,
            client_address=None,
        )
        hips = HipResult.objects.filter(
            analysis__series__study=study, analysis__status="done"
        ).select_related("analysis__series")
        second_opinion_answer_create(
            user=second,
            consult=answered,
            hips=[
                {
                    "series_instance_uid": hip.analysis.series.series_instance_uid,
                    "side": hip.side,
                    "grade": hip.current_grade,
                }
                for hip in hips
            ],
            comment="Agree with both grades; the left lesion reaches well past a third.",
            client_address=None,
        )
        say("  second-opinion request of the demo site answered by second_clinician")
    return {"open": opened, "answered": answered}


# --- patient explanation ---------------------------------------------------------------------


def explanation_prepare(*, patient_id: str, say: Say) -> str:
    """A patient explanation of the study and a live share link; returns the token."""
    from django.http import Http404

    from grading.explanations.models import PatientExplanation
    from grading.explanations.selectors import LinkGone, link_get_by_token
    from grading.explanations.services import patient_explanation_create, share_link_create

    demo = get_user_model().objects.get(username="demo")
    study = _study(patient_id)
    explanation = PatientExplanation.objects.filter(study=study, author=demo).first()
    if explanation is None:
        explanation = patient_explanation_create(
            user=demo,
            study=study,
            note=(
                "We looked at both hips on your MRI. The right hip shows an area of bone "
                "that has lost its blood supply; we will talk about what this means for you."
            ),
            client_address=None,
        )
        say(f"  patient explanation of {patient_id} written")
    path = Path(settings.VAR_DIR) / "demo_share_token"
    token = path.read_text().strip() if path.exists() else ""
    live = False
    if token:
        try:
            live = link_get_by_token(token=token).explanation_id == explanation.pk
        except (LinkGone, Http404):  # revoked, expired or from another database
            live = False
    if not live:
        _, token = share_link_create(user=demo, explanation=explanation, client_address=None)
        path.write_text(token)
        path.chmod(0o600)
        say("  patient share link created")
    return token
