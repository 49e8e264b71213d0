"""Sign-in pages, included from ``onfh_site.urls``."""

from django.urls import path

from grading.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/second-factor/", views.second_factor, name="second-factor"),
    path("account/two-factor/", views.two_factor_settings, name="two-factor"),
    path("sign-in-settings/", views.sign_in_settings_index, name="sign-in-settings"),
    path(
        "sites/<int:site_id>/sign-in-settings/",
        views.site_sign_in_settings,
        name="site-sign-in",
    ),
]
