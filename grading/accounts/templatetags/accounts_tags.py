"""``{% user_administers_a_site %}``: whether the top bar links the sign-in settings page."""

from __future__ import annotations

from typing import Any

from django import template

from grading.accounts.selectors import sites_administered_by

register = template.Library()


@register.simple_tag(takes_context=True)
def user_administers_a_site(context: dict[str, Any]) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    return user is not None and sites_administered_by(user=user).exists()
