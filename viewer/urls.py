from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from grading.accounts.views import LoginView
from viewer import views

app_name = "viewer"

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("upload/", views.upload, name="upload"),
    path("studies/<int:study_id>/", views.study, name="study"),
    path("tokens/", views.tokens, name="tokens"),
    path(
        "login/",
        LoginView.as_view(),  # password, then a TOTP code when needed
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("guide/", views.guide, name="guide"),
    path("guide/<slug:name>.md", views.guide, name="guide-doc"),
    re_path(r"^guide/(?P<path>[\w./-]+\.(?:png|svg|jpg))$", views.guide_image, name="guide-image"),
]

# The embedded mode has no separate web server: the portal serves its own static files
# unless a deployment sets ONFH_SERVE_STATIC = False and puts them behind a web server.
if getattr(settings, "ONFH_SERVE_STATIC", True):
    _prefix = settings.STATIC_URL.lstrip("/")
    urlpatterns.append(re_path(rf"^{_prefix}(?P<path>.+)$", views.static_file, name="static"))
