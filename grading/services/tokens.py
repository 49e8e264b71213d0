"""API tokens: made at login for scripts, listed and revoked by their owner, dead after
their expiry or a password change (``ApiToken``)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from grading.models import ApiToken
from grading.services.audit import audit_record

# A login made by a script that runs every few minutes must not pile up valid tokens.
MAX_ACTIVE_PER_USER = 20


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def password_check_of(user: Any) -> str:
    """Changes whenever the user's password (hash) changes."""
    return salted_hmac("onfh.api-token", user.password or "", algorithm="sha256").hexdigest()


def api_token_state(*, token: ApiToken, now: Any = None) -> str:
    """ "active", "revoked", "expired" or "password changed"."""
    now = now or timezone.now()
    if token.revoked:
        return "revoked"
    if token.expires <= now:
        return "expired"
    if not constant_time_compare(token.password_check, password_check_of(token.user)):
        return "password changed"
    return "active"


def api_token_create(
    *,
    user: Any,
    name: str = "api login",
    client_address: str | None = None,
    key: str | None = None,
    created: Any = None,
) -> tuple[ApiToken, str]:
    """A new token (and its key, shown once) valid for ``ONFH_API_TOKEN_TTL_DAYS``.
    ``key``/``created``: only to adopt an older token as it was."""
    key = key or secrets.token_hex(20)
    now = timezone.now()
    created = created or now
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=(name or "api login")[:100],
            prefix=key[:8],
            key_hash=_key_hash(key),
            password_check=password_check_of(user),
            created=created,
            expires=created + timedelta(days=settings.ONFH_API_TOKEN_TTL_DAYS),
        )
        active = ApiToken.objects.filter(user=user, revoked__isnull=True, expires__gt=now)
        beyond = list(active.order_by("-created", "-id").values_list("pk", flat=True))
        beyond = beyond[MAX_ACTIVE_PER_USER:]
        if beyond:
            ApiToken.objects.filter(pk__in=beyond).update(revoked=now)
        audit_record(
            actor=user,
            action="token.create",
            object_type="api_token",
            object_id=token.pk,
            after={
                "name": token.name,
                "prefix": token.prefix,
                "expires": token.expires.isoformat(),
                "revoked_oldest": len(beyond),
            },
            client_address=client_address,
        )
    return token, key


def api_token_revoke(*, user: Any, token_id: int, client_address: str | None) -> ApiToken:
    """Revoke one of the user's own tokens (ApiToken.DoesNotExist for anyone else's)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
        if token.revoked is None:
            token.revoked = timezone.now()
            token.save(update_fields=["revoked"])
            audit_record(
                actor=user,
                action="token.revoke",
                object_type="api_token",
                object_id=token.pk,
                after={"name": token.name, "prefix": token.prefix},
                client_address=client_address,
            )
    return token


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The token of ``key`` if it is active (and its user active), else None.

    A key of the older, unexpiring ``rest_framework.authtoken`` table is adopted on first
    use (migration 0007 adopts those that existed): it gets an expiry counted from its
    creation and is tied to the current password, and the old row is deleted.
    """
    token = ApiToken.objects.select_related("user").filter(key_hash=_key_hash(key)).first()
    if token is None:
        token = _adopt_legacy(key)
        if token is None:
            return None
    now = timezone.now()
    if api_token_state(token=token, now=now) != "active" or not token.user.is_active:
        return None
    if token.last_used is None or now - token.last_used > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token


def _adopt_legacy(key: str) -> ApiToken | None:
    from rest_framework.authtoken.models import Token

    legacy = Token.objects.select_related("user").filter(key=key).first()
    if legacy is None:
        return None
    with transaction.atomic():
        token, _ = api_token_create(
            user=legacy.user, name="older token", key=key, created=legacy.created
        )
        Token.objects.filter(pk=legacy.pk).delete()
    return ApiToken.objects.select_related("user").get(pk=token.pk)
