from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "grading.accounts"
    label = "accounts"
    verbose_name = "Sign-in: identity provider, second factor"
    default_auto_field = "django.db.models.BigAutoField"
