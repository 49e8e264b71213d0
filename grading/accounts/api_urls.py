from django.urls import path

from grading.accounts.apis import SiteSignInApi

urlpatterns = [
    path("sites/<int:site_id>/sign-in/", SiteSignInApi.as_view(), name="api-site-sign-in"),
]
