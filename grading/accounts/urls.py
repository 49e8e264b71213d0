"""Sign-in pages, included from ``onfh_site.urls``."""

from django.urls import path

from grading.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/second-factor/", views.second_factor, name="second-factor"),
    path("account/two-factor/", views.two_factor_settings, name="two-factor"),
]
