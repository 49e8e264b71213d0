"""Replay the audit trail against the grades and masks stored beside it.

The keyed chain proves the events were not rewritten; the grades themselves live in
ordinary rows (HipResult, GradeRevision, LabelMap, Study) that SQL can change without
touching an event. ``audit_replay`` rebuilds what the events say those rows must be and
lists every row that disagrees:

- a hip's AI grade is what its ``analysis.done`` event recorded for that side;
- a hip's grade revisions are, in order, the grades of its ``grade.change`` events;
- a hip's grade is its last ``grade.change`` (a hip a person drew goes back to none at a
  later ``labelmap.revert`` of its series), else its AI grade;
- a study's ``grade`` and ``ai_grade`` are the worst over the hips of the latest done
  analysis of each series, from the replayed grades;
- a series holds one label-map version beyond the AI's for each slice of each
  ``labelmap.edit`` and ``labelmap.revert`` event, and each slice's versions run 1..n.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Max

from grading.models import (
    AnalysisStatus,
    AuditEvent,
    GradeRevision,
    HipResult,
    LabelMap,
    Series,
    Study,
    worst_grade,
)
from grading.services.studies import latest_analyses

REPLAYED_ACTIONS = ("analysis.done", "grade.change", "labelmap.edit", "labelmap.revert")


@dataclass
class AuditReplayReport:
    hips: int = 0
    studies: int = 0
    series: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return (
                f"grades and masks agree with the audit trail: {self.hips} hips, "
                f"{self.studies} studies, {self.series} series"
            )
        shown = "\n  ".join(self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        return (
            f"grades or masks DIFFER from the audit trail ({len(self.problems)}):\n  {shown}{more}"
        )


@dataclass
class _Replayed:
    ai_grades: dict[int, dict[str, Any]] = field(default_factory=dict)  # analysis -> side
    changes: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    mask_versions: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # series
    last_revert: dict[int, int] = field(default_factory=dict)  # series -> seq


def _int(value: str) -> int | None:
    return int(value) if str(value).isdigit() else None


def _events() -> _Replayed:
    replayed = _Replayed()
    rows = (
        AuditEvent.objects.filter(action__in=REPLAYED_ACTIONS)
        .order_by("seq")
        .values_list("seq", "action", "object_id", "after")
        .iterator(chunk_size=2000)
    )
    for seq, action, object_id, after in rows:
        pk = _int(object_id)
        after = after if isinstance(after, dict) else {}
        if pk is None:
            continue
        if action == "analysis.done":
            replayed.ai_grades[pk] = {
                h.get("side"): h.get("grade") for h in after.get("hips", []) if isinstance(h, dict)
            }
        elif action == "grade.change":
            replayed.changes[pk].append((seq, after.get("grade")))
        elif action == "labelmap.edit":
            replayed.mask_versions[pk] += len(after.get("slices", []))
        elif action == "labelmap.revert":
            replayed.mask_versions[pk] += int(after.get("slices_reverted", 0))
            replayed.last_revert[pk] = seq
    return replayed


def _hips_check(replayed: _Replayed, report: AuditReplayReport) -> dict[int, tuple[Any, Any]]:
    """Each hip against its events; returns hip id -> (replayed ai_grade, grade)."""
    revisions: dict[int, list[str]] = defaultdict(list)
    for hip_id, grade in GradeRevision.objects.order_by("created", "id").values_list(
        "hip_result_id", "grade"
    ):
        revisions[hip_id].append(grade)
    expected: dict[int, tuple[Any, Any]] = {}
    hips = HipResult.objects.values_list(
        "pk", "analysis_id", "analysis__series_id", "side", "ai_grade", "grade"
    )
    for pk, analysis_id, series_id, side, ai_grade, grade in hips.iterator(chunk_size=2000):
        report.hips += 1
        ai_expected = ai_grade
        done = replayed.ai_grades.get(analysis_id)
        if done is not None:
            ai_expected = done.get(side)
            if ai_grade != ai_expected:
                report.problems.append(
                    f"hip {pk} ({side}, analysis {analysis_id}): ai_grade is {ai_grade!r} "
                    f"but the analysis.done event recorded {ai_expected!r}"
                )
        changes = replayed.changes.get(pk, [])
        audited = [g for _, g in changes]
        if revisions.get(pk, []) != audited:
            report.problems.append(
                f"hip {pk} ({side}): grade revisions {revisions.get(pk, [])} but the audit "
                f"trail's grade.change events give {audited}"
            )
        if changes:
            last_seq, current = changes[-1]
            if ai_expected is None and replayed.last_revert.get(series_id, 0) > last_seq:
                current = None  # a hip a person drew, reverted to the AI's masks
        else:
            current = ai_expected
        if grade != current:
            report.problems.append(
                f"hip {pk} ({side}): grade is {grade!r} but the audit trail gives {current!r}"
            )
        expected[pk] = (ai_expected, current)
    return expected


def _studies_check(expected: dict[int, tuple[Any, Any]], report: AuditReplayReport) -> None:
    for study in Study.objects.only("pk", "grade", "ai_grade").iterator(chunk_size=500):
        report.studies += 1
        done = [a.pk for a in latest_analyses(study_id=study.pk).values()]
        done_ids = set(
            HipResult.objects.filter(
                analysis_id__in=done, analysis__status=AnalysisStatus.DONE
            ).values_list("pk", flat=True)
        )
        ai = worst_grade([expected[h][0] for h in done_ids if h in expected])
        current = worst_grade([expected[h][1] for h in done_ids if h in expected])
        if study.grade != current or study.ai_grade != ai:
            report.problems.append(
                f"study {study.pk}: grade {study.grade!r} / ai_grade {study.ai_grade!r} but "
                f"its hips' audited grades give {current!r} / {ai!r}"
            )


def _masks_check(replayed: _Replayed, report: AuditReplayReport) -> None:
    beyond_ai = dict(
        LabelMap.objects.filter(version__gt=1)
        .values("analysis__series_id")
        .annotate(n=Count("id"))
        .values_list("analysis__series_id", "n")
    )
    for series_id in Series.objects.values_list("pk", flat=True).iterator(chunk_size=2000):
        report.series += 1
        stored, audited = beyond_ai.get(series_id, 0), replayed.mask_versions.get(series_id, 0)
        if stored != audited:
            report.problems.append(
                f"series {series_id}: {stored} edited or reverted label-map versions stored, "
                f"{audited} in the audit trail"
            )
    gaps = (
        LabelMap.objects.values("analysis_id", "instance_id")
        .annotate(n=Count("id"), top=Max("version"))
        .exclude(n=F("top"))
    )
    for row in gaps:
        report.problems.append(
            f"label maps of instance {row['instance_id']} (analysis {row['analysis_id']}): "
            f"{row['n']} versions stored but the highest is v{row['top']} (one was deleted)"
        )


def audit_replay() -> AuditReplayReport:
    report = AuditReplayReport()
    replayed = _events()
    expected = _hips_check(replayed, report)
    _studies_check(expected, report)
    _masks_check(replayed, report)
    return report
