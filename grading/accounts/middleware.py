"""A session signed in with a local password but without the second factor its user now
needs (a site switched the rule on, or the user enrolled elsewhere) is signed out.

Sign-in itself (``views.LoginView``) logs nobody in before both factors pass, so this only
catches sessions that began before the rule. Provider sign-ins are left alone: the
hospital's provider runs its own second factor. Token-authenticated API calls (scripts)
carry no session and are not affected."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import BACKEND_SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from grading.accounts.oidc import BACKEND_PATH as OIDC_BACKEND
from grading.accounts.selectors import user_needs_second_factor

_EXEMPT = ("/login/", "/logout/", "/static/", "/oidc/")


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(_EXEMPT)
            and request.session.get(BACKEND_SESSION_KEY) != OIDC_BACKEND
            and not user.is_verified()  # type: ignore[union-attr]  # django-otp
            and user_needs_second_factor(user=user)
        ):
            logout(request)
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "Sign in again with your second factor."}, status=401
                )
            return redirect(f"/login/?next={request.path}")
        return self.get_response(request)
