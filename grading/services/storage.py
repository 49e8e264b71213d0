"""The file store at start-up: in S3 mode (``ONFH_STORAGE=s3``) the bucket must exist
and the credentials must open it, or the portal refuses to start with a sentence that
says which (instead of a 500 on the first upload).

Called by a Django system check (``manage.py migrate``, ``check``, ``dicom_scp``...), by
the ASGI application when it loads, and by each Celery worker when it starts.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class StorageMisconfigured(ImproperlyConfigured):
    pass


def _s3_options() -> dict[str, object] | None:
    default = settings.STORAGES.get("default", {})
    if not str(default.get("BACKEND", "")).endswith("S3Storage"):
        return None
    return dict(default.get("OPTIONS", {}))


def storage_verify() -> None:
    """Raise StorageMisconfigured when the S3 bucket is not there or not ours to use."""
    options = _s3_options()
    if options is None:
        return
    import botocore.exceptions
    from django.core.files.storage import storages

    bucket = str(options.get("bucket_name") or "")
    endpoint = str(options.get("endpoint_url") or "AWS S3")
    if not bucket:
        raise StorageMisconfigured(
            "ONFH_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket the portal stores in)."
        )
    try:
        client = storages["default"].connection.meta.client
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if status == 404 or code in ("404", "NoSuchBucket"):
            raise StorageMisconfigured(
                f"ONFH_STORAGE=s3: the bucket {bucket!r} does not exist at {endpoint}. "
                "Create it, or set AWS_STORAGE_BUCKET_NAME to one that does."
            ) from exc
        if status in (401, 403) or code in ("403", "AccessDenied", "InvalidAccessKeyId"):
            raise StorageMisconfigured(
                f"ONFH_STORAGE=s3: {endpoint} refused the credentials for bucket {bucket!r} "
                f"({status or code}). Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and "
                "that they may read and write the bucket."
            ) from exc
        raise StorageMisconfigured(
            f"ONFH_STORAGE=s3: bucket {bucket!r} at {endpoint} answered {status} {code}."
        ) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise StorageMisconfigured(
            "ONFH_STORAGE=s3 has no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise StorageMisconfigured(
            f"ONFH_STORAGE=s3: cannot reach {endpoint} ({exc}). Check AWS_S3_ENDPOINT_URL."
        ) from exc
