"""Reads the REST API needs beyond ``grading.selectors``: the filtered, ordered study list.

Built on ``studies_visible_to`` (so a user never lists a study of a site they do not
belong to). Status, grades and flags are stored on the study by the services, so the
list is one query with the site joined, plus the pagination count.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from grading.models import GRADE_RANK, GradeChoice, Study, StudyStatus
from grading.selectors import studies_visible_to

# The largest primary key a database stores (a signed 64-bit integer). A larger number in
# a filter would overflow the query parameter (SQLite raises OverflowError, PostgreSQL a
# DataError): it is refused as a bad value instead.
MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number from 1 to ``MAX_ID`` (else a 400 with the reason)."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class StudyFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=StudyStatus.choices)
    grade = django_filters.ChoiceFilter(
        choices=GradeChoice.choices, help_text="Current grade: the worst over the study's hips."
    )
    ai_grade = django_filters.ChoiceFilter(choices=GradeChoice.choices)
    site = IdFilter(field_name="site_id")
    date_from = django_filters.DateFilter(field_name="study_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="study_date", lookup_expr="lte")

    class Meta:
        model = Study
        fields = ["status", "grade", "ai_grade", "site", "date_from", "date_to"]


def _grade_rank(field: str) -> Case:
    return Case(
        *[When(**{field: grade}, then=Value(rank)) for grade, rank in GRADE_RANK.items()],
        default=Value(-1),
        output_field=IntegerField(),
    )


# ordering key -> (expression or field, hides patient data)
STUDY_ORDERINGS: dict[str, tuple[str, bool]] = {
    "id": ("id", False),
    "created": ("created", False),
    "study_date": ("study_date", True),
    "status": ("status", False),
    "grade": ("grade_rank", False),
    "ai_grade": ("ai_grade_rank", False),
    "site": ("site__name", False),
    "study_instance_uid": ("study_instance_uid", False),
    "patient_name": ("patient_name", True),
    "patient_id": ("patient_id", True),
}
DEFAULT_ORDERING = ("-created",)


def study_list(
    *,
    user: Any,
    filters: dict[str, Any] | None = None,
    search: str = "",
    ordering: str = "",
    patient_fields_hidden: bool = False,
) -> QuerySet[Study]:
    """The studies the user may see, filtered (``StudyFilter``), searched and ordered.

    ``search``: case-insensitive, any word; matches the patient's name or ID, the
    StudyInstanceUID, the accession number or the description. ``ordering``: comma
    separated keys of ``STUDY_ORDERINGS``, ``-`` for descending. With
    ``patient_fields_hidden`` (a student) the patient fields, the accession number and
    the study date are neither searched, filtered nor ordered by. Raises
    ``ValidationError`` for a bad filter value or ordering key.
    """
    qs = studies_visible_to(user=user)
    if patient_fields_hidden:
        # The study date is not shown to a student; a filter on it would reveal it.
        filters = {k: v for k, v in (filters or {}).items() if k not in ("date_from", "date_to")}
    filterset = StudyFilter(data=filters or {}, queryset=qs)
    if not filterset.is_valid():
        raise ValidationError(
            {name: [str(e) for e in errors] for name, errors in filterset.errors.items()}
        )
    qs = filterset.qs

    for word in search.split():
        condition = Q(study_instance_uid__icontains=word) | Q(study_description__icontains=word)
        if not patient_fields_hidden:
            condition |= (
                Q(patient_name__icontains=word)
                | Q(patient_id__icontains=word)
                | Q(accession_number__icontains=word)
            )
        qs = qs.filter(condition)

    order_by: list[str] = []
    for raw in (part.strip() for part in ordering.split(",")):
        if not raw:
            continue
        key = raw.lstrip("-")
        if key not in STUDY_ORDERINGS:
            raise ValidationError(
                {"ordering": [f"Unknown ordering {key!r}; one of {sorted(STUDY_ORDERINGS)}."]}
            )
        field, is_patient_field = STUDY_ORDERINGS[key]
        if is_patient_field and patient_fields_hidden:
            continue
        order_by.append(("-" if raw.startswith("-") else "") + field)
    if any(f.lstrip("-") == "grade_rank" for f in order_by):
        qs = qs.annotate(grade_rank=_grade_rank("grade"))
    if any(f.lstrip("-") == "ai_grade_rank" for f in order_by):
        qs = qs.annotate(ai_grade_rank=_grade_rank("ai_grade"))
    # A unique tie-breaker keeps pages stable.
    return qs.order_by(*(order_by or DEFAULT_ORDERING), "-id")
