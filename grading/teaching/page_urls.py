"""Teaching pages, mounted under ``/teaching/`` by ``onfh_site.urls``."""

from django.urls import path

from grading.teaching import views

app_name = "teaching"

urlpatterns = [
    path("", views.collection_list, name="collections"),
    path("collections/<int:collection_id>/", views.collection_page, name="collection"),
    path("collections/<int:collection_id>/results/", views.results_page, name="results"),
    path("cases/<int:case_id>/", views.case_page, name="case"),
    path("attempts/<int:attempt_id>/", views.attempt_page, name="attempt"),
]
