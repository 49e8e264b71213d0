"""API tokens: several per user, each with an expiry, stored as a hash."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """One token a user can send as ``Authorization: Token <key>``.

    Only the sha256 of the key is stored (``key_hash``) and its first characters
    (``prefix``) to tell tokens apart. ``password_check`` ties the token to the password
    it was made under: after any password change it no longer authenticates. A token is
    valid while not revoked, not past ``expires`` and its password still current.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    password_check = models.CharField(max_length=64)
    created = models.DateTimeField()
    expires = models.DateTimeField(db_index=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "revoked"], name="apitoken_user_revoked")]

    def __str__(self) -> str:
        return f"token {self.prefix}… of {self.user_id} ({self.name})"
