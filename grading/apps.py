from django.apps import AppConfig


class GradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "grading"
    verbose_name = "ONFH grading"

    def ready(self) -> None:
        from django.core import checks

        from grading.checks import storage_check

        checks.register(storage_check, "onfh")
