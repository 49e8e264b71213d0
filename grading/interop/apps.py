from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "grading.interop"
    label = "interop"
    verbose_name = "DICOM interoperability"
    default_auto_field = "django.db.models.BigAutoField"
