from django.apps import AppConfig


class ExplanationsConfig(AppConfig):
    name = "grading.explanations"
    label = "explanations"
    verbose_name = "Patient explanations"
    default_auto_field = "django.db.models.BigAutoField"
