from django.apps import AppConfig


class ConsultsConfig(AppConfig):
    name = "grading.consults"
    label = "consults"
    verbose_name = "Second opinions"
    default_auto_field = "django.db.models.BigAutoField"
