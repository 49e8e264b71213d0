"""Pages of patient explanations, included from ``onfh_site.urls``."""

from django.urls import path

from grading.explanations import views

app_name = "explanations"

urlpatterns = [
    # The share token is never in the path (access logs): /p/#<token>, then a POST.
    path("p/", views.public_page, name="public"),
    path("p/pdf/", views.public_pdf, name="public-pdf"),
    path("explanations/studies/<int:study_id>/", views.study_explanations, name="study"),
    path("explanations/<int:explanation_id>/links/", views.link_create, name="link-create"),
    path("explanations/links/<int:link_id>/revoke/", views.link_revoke, name="link-revoke"),
]
