"""Sign-in through the hospital's OpenID Connect provider (mozilla-django-oidc).

The library runs the code flow (with PKCE) and checks the ID token's signature; this
backend links the provider's account (``iss``, ``sub``) to a portal user and sets the
user's site memberships from the groups claim (``IdentityProviderGroup``, per site)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from grading.accounts.services import provider_user_sign_in

BACKEND_PATH = "grading.accounts.oidc.SiteMappingOIDCBackend"


class SiteMappingOIDCBackend(OIDCAuthenticationBackend):
    def get_or_create_user(self, access_token: str, id_token: str, payload: dict) -> Any:
        issuer = str(payload.get("iss") or "")
        expected = getattr(settings, "OIDC_OP_ISSUER", "")
        if expected and issuer != expected:
            raise SuspiciousOperation(f"ID token from issuer {issuer!r}, expected {expected!r}.")
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo subject differs from the ID token's.")
        return provider_user_sign_in(
            issuer=issuer or expected,
            claims={**payload, **userinfo},
            groups_claim=settings.ONFH_OIDC_GROUPS_CLAIM,
        )
