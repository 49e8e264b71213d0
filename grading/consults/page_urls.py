"""Pages of second opinions, included from ``onfh_site.urls``."""

from django.urls import path

from grading.consults import views

app_name = "consults"

urlpatterns = [
    path("consults/", views.consult_list, name="list"),
    path("consults/studies/<int:study_id>/new/", views.consult_new, name="new"),
    path("consults/<int:request_id>/", views.consult_detail, name="detail"),
    path("consults/<int:request_id>/answer/", views.consult_answer, name="answer"),
    path("consults/<int:request_id>/close/", views.consult_close, name="close"),
]
