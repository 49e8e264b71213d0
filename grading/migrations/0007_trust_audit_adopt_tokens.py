"""Existing API tokens (``rest_framework.authtoken``: one per user, no expiry, key stored
in clear) become ``ApiToken`` rows: the same key keeps working for scripts, now stored
as its sha256, expiring ONFH_API_TOKEN_TTL_DAYS after it was first made (at once if it
is older than that) and tied to the current password. The old rows are deleted."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils.crypto import salted_hmac


def adopt(apps, schema_editor) -> None:
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("grading", "ApiToken")
    ttl = timedelta(days=settings.ONFH_API_TOKEN_TTL_DAYS)
    for legacy in Token.objects.select_related("user"):
        ApiToken.objects.create(
            user_id=legacy.user_id,
            name="older token",
            prefix=legacy.key[:8],
            key_hash=hashlib.sha256(legacy.key.encode("utf-8")).hexdigest(),
            password_check=salted_hmac(
                "onfh.api-token", legacy.user.password or "", algorithm="sha256"
            ).hexdigest(),
            created=legacy.created,
            expires=legacy.created + ttl,
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("grading", "0006_trust_audit_api_tokens"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.RunPython(adopt, migrations.RunPython.noop, elidable=False),
    ]
