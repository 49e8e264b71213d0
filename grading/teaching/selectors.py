"""Reads for teaching, filtered by who may see what.

A collection is seen by its teacher and its enrolled students (and a superuser); anyone
else gets 404, never 403. Inside a collection, what only the teacher may see (the source
studies, the class's results) answers 403 to a student. A student sees a case's answer
(reference grades, reference masks, AI grade) only after submitting an attempt.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from grading.models import Membership, Role, Site, Study
from grading.selectors import studies_visible_to
from grading.teaching.models import Attempt, Case, CaseInstance, Collection, Enrolment
from grading.teaching.scoring import GRADES

TEACHING_ROLES = (Role.TEACHER, Role.SITE_ADMIN)


def _anonymous(user: Any) -> bool:
    return user is None or not getattr(user, "is_authenticated", False)


def collections_visible_to(*, user: Any) -> QuerySet[Collection]:
    if _anonymous(user):
        return Collection.objects.none()
    qs = Collection.objects.select_related("site", "teacher")
    if getattr(user, "is_superuser", False):
        return qs
    enrolled = Enrolment.objects.filter(student=user).values("collection_id")
    return qs.filter(Q(teacher=user) | Q(pk__in=enrolled))


def collection_get_visible(*, user: Any, collection_id: int) -> Collection:
    try:
        return collections_visible_to(user=user).get(pk=collection_id)
    except (Collection.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such collection.") from exc


def user_teaches(*, user: Any, collection: Collection) -> bool:
    if _anonymous(user):
        return False
    return bool(getattr(user, "is_superuser", False)) or collection.teacher_id == user.pk


def user_enrolled(*, user: Any, collection: Collection) -> bool:
    if _anonymous(user):
        return False
    return Enrolment.objects.filter(collection=collection, student=user).exists()


def collection_get_taught(*, user: Any, collection_id: int) -> Collection:
    """The collection when the user teaches it; 404 when they cannot see it, 403 for a
    student of it."""
    collection = collection_get_visible(user=user, collection_id=collection_id)
    if not user_teaches(user=user, collection=collection):
        raise PermissionDenied("Only the collection's teacher may do this.")
    return collection


def case_get_visible(*, user: Any, case_id: int) -> Case:
    try:
        return Case.objects.select_related("collection__site").get(
            pk=case_id, collection__in=collections_visible_to(user=user)
        )
    except (Case.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such case.") from exc


def case_instance_get_visible(*, user: Any, instance_id: int) -> CaseInstance:
    try:
        return CaseInstance.objects.select_related("case__collection").get(
            pk=instance_id, case__collection__in=collections_visible_to(user=user)
        )
    except (CaseInstance.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such image.") from exc


def attempt_get_visible(*, user: Any, attempt_id: int) -> Attempt:
    """The student's own attempt, or any attempt of a collection the user teaches."""
    try:
        attempt = Attempt.objects.select_related("case__collection", "student").get(
            pk=attempt_id, case__collection__in=collections_visible_to(user=user)
        )
    except (Attempt.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such attempt.") from exc
    if attempt.student_id != user.pk and not user_teaches(
        user=user, collection=attempt.case.collection
    ):
        raise Http404("No such attempt.")
    return attempt


def case_instances(*, case: Case) -> list[CaseInstance]:
    return list(CaseInstance.objects.filter(case=case).order_by("index"))


def attempts_of(*, user: Any, case: Case) -> list[Attempt]:
    return list(Attempt.objects.filter(case=case, student=user).order_by("number"))


def answer_revealed(*, user: Any, case: Case) -> bool:
    """The teacher always sees the answer; a student once they submitted an attempt."""
    if user_teaches(user=user, collection=case.collection):
        return True
    return Attempt.objects.filter(case=case, student=user).exists()


def teaching_sites(*, user: Any) -> QuerySet[Site]:
    """Sites where the user may start a collection (teacher or site admin there)."""
    if _anonymous(user):
        return Site.objects.none()
    if getattr(user, "is_superuser", False):
        return Site.objects.order_by("name")
    return Site.objects.filter(
        memberships__user=user, memberships__role__in=[r.value for r in TEACHING_ROLES]
    ).order_by("name")


def studies_for_cases(*, user: Any) -> QuerySet[Study]:
    """Finished studies the teacher may see: what a case can be made from."""
    return studies_visible_to(user=user).filter(status="done").order_by("-created", "-id")


def enrollable_users(*, collection: Collection) -> QuerySet[Any]:
    """Members of the collection's site (any role), not yet enrolled."""
    from django.contrib.auth import get_user_model

    members = Membership.objects.filter(site=collection.site).values("user_id")
    enrolled = Enrolment.objects.filter(collection=collection).values("student_id")
    return (
        get_user_model()
        .objects.filter(pk__in=members)
        .exclude(pk__in=enrolled)
        .order_by("username")
    )


# --- progress and results -----------------------------------------------------------------


def student_progress(*, user: Any, collection: Collection) -> dict[str, Any]:
    """``{"cases", "done", "attempts", "mean_first_score", "mean_latest_score"}`` of one
    student in one collection."""
    cases = Case.objects.filter(collection=collection).count()
    by_case: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in Attempt.objects.filter(case__collection=collection, student=user).order_by(
        "number"
    ):
        by_case[attempt.case_id].append(attempt)
    firsts = [a[0].score for a in by_case.values()]
    latests = [a[-1].score for a in by_case.values()]
    return {
        "cases": cases,
        "done": len(by_case),
        "attempts": sum(len(a) for a in by_case.values()),
        "mean_first_score": _mean(firsts),
        "mean_latest_score": _mean(latests),
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def collection_results(*, collection: Collection) -> dict[str, Any]:
    """The class's results, built from every attempt of the collection.

    Per case: per hip the reference grade, the distribution of the students' first-attempt
    grades, the agreement; the mean first and latest score and Dice. Per student: progress
    and every attempt over time. A confusion matrix of first-attempt grades against the
    reference over all cases and hips (rows reference, columns answer, in grade order).
    First attempts measure what the class knew; latest ones what it learned.
    """
    cases = list(Case.objects.filter(collection=collection).order_by("number"))
    students = list(
        Enrolment.objects.filter(collection=collection)
        .select_related("student")
        .order_by("student__username")
    )
    attempts = list(
        Attempt.objects.filter(case__collection=collection)
        .select_related("student")
        .order_by("submitted_at", "id")
    )
    per_pair: dict[tuple[int, int], list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        per_pair[(attempt.case_id, attempt.student_id)].append(attempt)
    confusion = [[0] * len(GRADES) for _ in GRADES]
    case_rows = []
    for case in cases:
        pairs = [a for (case_id, _), a in per_pair.items() if case_id == case.pk]
        firsts = [a[0] for a in pairs]
        latests = [a[-1] for a in pairs]
        hips = []
        for ref in case.reference_hips:
            side, ref_grade = ref["side"], ref["grade"]
            answers = [a.grades.get(side) for a in firsts if a.grades.get(side)]
            counts = Counter(answers)
            for answer in answers:
                if ref_grade in GRADES and answer in GRADES:
                    confusion[GRADES.index(ref_grade)][GRADES.index(answer)] += 1
            hips.append(
                {
                    "side": side,
                    "reference_grade": ref_grade,
                    "distribution": {g: counts.get(g, 0) for g in GRADES},
                    "agreement": _mean([1.0 if a == ref_grade else 0.0 for a in answers]),
                }
            )
        case_rows.append(
            {
                "id": case.pk,
                "pseudonym": case.pseudonym,
                "students_done": len(pairs),
                "attempts": sum(len(a) for a in pairs),
                "mean_first_score": _mean([a.score for a in firsts]),
                "mean_latest_score": _mean([a.score for a in latests]),
                "mean_first_dice": _mean([a.dice for a in firsts if a.dice is not None]),
                "hips": hips,
            }
        )
    student_rows = []
    for enrolment in students:
        student = enrolment.student
        mine = [a for a in attempts if a.student_id == student.pk]
        firsts = [a for (_, sid), a in per_pair.items() if sid == student.pk]
        student_rows.append(
            {
                "id": student.pk,
                "username": student.get_username(),
                "cases_done": len(firsts),
                "cases": len(cases),
                "mean_first_score": _mean([a[0].score for a in firsts]),
                "mean_latest_score": _mean([a[-1].score for a in firsts]),
                "attempts": [
                    {
                        "id": a.pk,
                        "case": a.case_id,
                        "pseudonym": f"Case {next(c.number for c in cases if c.pk == a.case_id)}",
                        "number": a.number,
                        "score": a.score,
                        "dice": a.dice,
                        "submitted_at": a.submitted_at,
                    }
                    for a in mine
                ],
            }
        )
    return {
        "grades": list(GRADES),
        "cases": case_rows,
        "students": student_rows,
        "confusion": confusion,
    }
