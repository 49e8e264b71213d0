from django.urls import path

from grading.consumers import StudyStatusConsumer

websocket_urlpatterns = [
    path("ws/studies/", StudyStatusConsumer.as_asgi()),
]
