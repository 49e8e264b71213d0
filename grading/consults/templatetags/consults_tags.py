"""``{% consult_badge %}``: the worklist's count of second opinions waiting for you."""

from __future__ import annotations

from typing import Any

from django import template

from grading.consults.selectors import consult_open_count

register = template.Library()


@register.inclusion_tag("consults/badge.html", takes_context=True)
def consult_badge(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    count = consult_open_count(user=user) if user.is_authenticated else 0
    return {"count": count, "request": context["request"]}  # the CSP nonce is on the request


@register.simple_tag(takes_context=True)
def user_may_grade(context: dict[str, Any], study: Any) -> bool:
    """Whether the study page offers second opinions and patient explanations."""
    from grading.selectors import user_can_grade

    return user_can_grade(user=context["request"].user, study=study)
