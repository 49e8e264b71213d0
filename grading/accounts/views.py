"""Sign-in pages: password, then (when the user has one or a site requires it) a TOTP code;
enrolment of an authenticator. Nobody is logged in before both factors pass."""

from __future__ import annotations

import time
from typing import Any

import segno
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from grading.accounts.selectors import (
    site_sign_in_read,
    sites_administered_by,
    user_administers_site,
    user_needs_second_factor,
    user_totp_devices,
)
from grading.accounts.services import (
    site_sign_in_update,
    totp_device_confirm,
    totp_device_start,
    totp_verify,
)
from grading.apis.common import client_address
from grading.form_errors import validation_text
from grading.models.sites import Role
from grading.selectors import site_get_visible

_PENDING = "onfh_pending_sign_in"
_PENDING_SECONDS = 300


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = settings.ONFH_OIDC_ENABLED
        context["oidc_button"] = settings.ONFH_OIDC_BUTTON
        context["idp_failed"] = self.request.GET.get("idp") == "failed"
        return context

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if not user_needs_second_factor(user=user):
            return super().form_valid(form)
        self.request.session.cycle_key()
        self.request.session[_PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "next": self.get_success_url(),
            "at": time.time(),
        }
        return redirect("accounts:second-factor")


def _pending_user(request: HttpRequest) -> tuple[Any, dict[str, Any]] | None:
    pending = request.session.get(_PENDING)
    if not pending or time.time() - pending["at"] > _PENDING_SECONDS:
        return None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    return (user, pending) if user else None


def _enrolment_context(device: TOTPDevice) -> dict[str, Any]:
    uri = device.config_url
    return {
        "secret": _base32(device),
        "otpauth_uri": uri,
        # dark on white with its quiet zone, or phones cannot read it on the dark theme
        "qr_svg": mark_safe(  # noqa: S308 - segno's own SVG
            segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff")
        ),
    }


def _base32(device: TOTPDevice) -> str:
    import base64

    return base64.b32encode(device.bin_key).decode().rstrip("=")


def second_factor(request: HttpRequest) -> HttpResponse:
    """The code step of a password sign-in; enrols an authenticator first when the user's
    site requires one and the user has none."""
    found = _pending_user(request)
    if found is None:
        request.session.pop(_PENDING, None)
        return redirect("viewer:login")
    user, pending = found
    enrolling = not user_totp_devices(user=user).exists()
    error = ""
    device: TOTPDevice | None = None
    if enrolling:
        device = TOTPDevice.objects.filter(
            user=user, confirmed=False, pk=pending.get("device")
        ).first() or totp_device_start(user=user)
        pending["device"] = device.pk
        request.session[_PENDING] = pending
    if request.method == "POST":
        token = request.POST.get("code", "")
        if enrolling:
            assert device is not None
            ok = totp_device_confirm(device=device, token=token)
        else:
            device = totp_verify(user=user, token=token)
            ok = device is not None
        if ok and device is not None:
            del request.session[_PENDING]
            login(request, user, backend=pending["backend"])
            otp_login(request, device)
            nxt = pending.get("next") or settings.LOGIN_REDIRECT_URL
            if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
                nxt = settings.LOGIN_REDIRECT_URL
            return HttpResponseRedirect(nxt)
        error = "Code: that code is not right (or was used already). Try the next one."
    context: dict[str, Any] = {"enrolling": enrolling, "error": error, "pending_user": user}
    if enrolling and device is not None:
        context.update(_enrolment_context(device))
    return render(request, "accounts/second_factor.html", context, status=400 if error else 200)


@login_required
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    """A signed-in user adds (or replaces) an authenticator."""
    error = ""
    device = TOTPDevice.objects.filter(
        user=request.user, confirmed=False, pk=request.session.get("onfh_enrol_device")
    ).first()
    if request.method == "POST" and device is not None:
        if totp_device_confirm(device=device, token=request.POST.get("code", "")):
            otp_login(request, device)
            request.session.pop("onfh_enrol_device", None)
            return render(request, "accounts/two_factor.html", {"done": True})
        error = "Code: that code is not right. Try the next one."
    if device is None:
        device = totp_device_start(user=request.user)
        request.session["onfh_enrol_device"] = device.pk
    context = {
        "error": error,
        "has_device": user_totp_devices(user=request.user).exists(),
        **_enrolment_context(device),
    }
    return render(request, "accounts/two_factor.html", context, status=400 if error else 200)


# Empty rows the settings page offers for new provider groups.
_NEW_GROUP_ROWS = 3


@login_required
def sign_in_settings_index(request: HttpRequest) -> HttpResponse:
    """The sites whose sign-in the user administers: straight to the one, or a list."""
    sites = list(sites_administered_by(user=request.user))
    if len(sites) == 1:
        return redirect("accounts:site-sign-in", site_id=sites[0].pk)
    if not sites:
        raise PermissionDenied("Only a site's administrators change its sign-in settings.")
    return render(request, "accounts/sign_in_sites.html", {"sites": sites})


def _posted_groups(request: HttpRequest) -> dict[str, str]:
    """``group_<n>``/``role_<n>`` rows of the form, less those ticked ``remove_<n>`` and the
    empty new rows."""
    wanted: dict[str, str] = {}
    rows = sorted(
        {k.split("_", 1)[1] for k in request.POST if k.startswith(("group_", "role_"))},
        key=lambda n: int(n) if n.isdigit() else 0,
    )
    for n in rows:
        group = request.POST.get(f"group_{n}", "").strip()
        role = request.POST.get(f"role_{n}", "").strip()
        if request.POST.get(f"remove_{n}") or (not group and not role):
            continue
        if not group:
            raise ValidationError({"group": "A group name is needed for every role chosen."})
        if group in wanted:
            raise ValidationError({"group": f"The group {group!r} is listed twice."})
        wanted[group] = role
    return wanted


@login_required
def site_sign_in_settings(request: HttpRequest, site_id: int) -> HttpResponse:
    """A site admin's page for the site's sign-in: whether members must give a TOTP code,
    and which groups of the identity provider give which role here. Every change is
    audited (``site.sign_in_policy``, ``site.idp_group``) with the admin's address."""
    site = site_get_visible(user=request.user, site_id=site_id)  # 404 for other sites
    if not user_administers_site(user=request.user, site=site):
        raise PermissionDenied("Only the site's administrators change its sign-in settings.")
    error, saved, status = "", False, 200
    current = site_sign_in_read(site=site)
    if request.method == "POST":
        try:
            site_sign_in_update(
                site=site,
                require_totp=request.POST.get("require_totp") == "on",
                idp_groups=_posted_groups(request),
                actor=request.user,
                client_address=client_address(request),
            )
        except ValidationError as exc:
            error, status = validation_text(exc, {"group": "Group", "role": "Role"}), 400
            current = {
                "require_totp": request.POST.get("require_totp") == "on",
                "idp_groups": [{"group": g, "role": r} for g, r in _posted_groups_lenient(request)],
            }
        else:
            return redirect(f"{request.path}?saved=1")
    saved = request.GET.get("saved") == "1"
    rows = [*current["idp_groups"], *({"group": "", "role": ""} for _ in range(_NEW_GROUP_ROWS))]
    context = {
        "site": site,
        "require_totp": current["require_totp"],
        "rows": rows,
        "roles": Role.choices,
        "error": error,
        "saved": saved,
        "oidc_enabled": settings.ONFH_OIDC_ENABLED,
        "groups_claim": settings.ONFH_OIDC_GROUPS_CLAIM,
        "admin_has_totp": user_totp_devices(user=request.user).exists(),
    }
    return render(request, "accounts/site_sign_in.html", context, status=status)


def _posted_groups_lenient(request: HttpRequest) -> list[tuple[str, str]]:
    """The rows as typed, to show the form again after an error (nothing is lost)."""
    rows = []
    for key in sorted(k for k in request.POST if k.startswith("group_")):
        n = key.split("_", 1)[1]
        group = request.POST.get(key, "").strip()
        role = request.POST.get(f"role_{n}", "").strip()
        if (group or role) and not request.POST.get(f"remove_{n}"):
            rows.append((group, role))
    return rows


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer while an account or address is locked out: JSON for the API,
    a page for people."""
    minutes = round(settings.AXES_COOLOFF_TIME * 60)
    detail = (
        "Too many failed sign-ins for this account or from this address. "
        f"Try again in {minutes} minutes."
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=429)
    return render(request, "registration/locked_out.html", {"detail": detail}, status=429)
