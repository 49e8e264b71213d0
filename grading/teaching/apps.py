from django.apps import AppConfig


class TeachingConfig(AppConfig):
    name = "grading.teaching"
    label = "teaching"
    verbose_name = "Teaching collections"
    default_auto_field = "django.db.models.BigAutoField"
