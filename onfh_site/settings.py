"""One settings module for every mode, driven by environment variables (django-environ).

With no environment at all this is the EMBEDDED mode: SQLite under var/, files under
var/media, a Celery broker on the file system (kombu's filesystem transport, a real
separate worker process) and an in-memory channel layer fed by a DB outbox relay.
Environment variables switch on PostgreSQL (DATABASE_URL), Redis or RabbitMQ
(CELERY_BROKER_URL), channels-redis (REDIS_URL) and S3-style storage (ONFH_STORAGE=s3).
The table of variables is in docs/operations.md.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env", overwrite=False)

# Everything the embedded mode writes lives under VAR_DIR (db, media, broker, secret key).
# It holds patient images, the database and the keys: owner only (0700; secrets 0600).
# An empty ONFH_VAR_DIR means the default too (not the working directory).
VAR_DIR = Path(env.str("ONFH_VAR_DIR", default="") or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if VAR_DIR.stat().st_uid == os.getuid():
    VAR_DIR.chmod(0o700)  # also a var/ made world-readable by an older version


def _embedded_secret(name: str) -> str:
    """Generated once (0600 from the start), then read back, so sessions and the audit
    chain survive a restart of the embedded mode."""
    path = VAR_DIR / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(0o600)
    for _ in range(100):  # another process may have created it a moment ago
        if value := path.read_text().strip():
            return value
        time.sleep(0.05)
    raise RuntimeError(f"{path} is empty")


SECRET_KEY = env.str("SECRET_KEY", default="") or _embedded_secret("secret_key")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "grading",
    "grading.consults",
    "grading.explanations",
    "grading.teaching",
    "grading.interop",
    "viewer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "onfh_site.urls"
WSGI_APPLICATION = "onfh_site.wsgi.application"
ASGI_APPLICATION = "onfh_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "viewer.context_processors.worker_status",
                "viewer.page_help.page_help",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker process share one SQLite file: WAL lets readers go on
    # while one writes, IMMEDIATE takes the write lock at BEGIN (no deadlock on lock
    # upgrade), and the timeout makes a writer wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
if (
    IS_POSTGRES
    and env.bool("ONFH_ASGI_PROCESS", default=False)
    and env.int("ONFH_DB_POOL_MAX", default=10)
):
    # The web process (onfh_site/asgi.py sets ONFH_ASGI_PROCESS) runs views in many
    # threads; persistent per-thread connections pile up past PostgreSQL's
    # max_connections under load (the load benchmark hit "too many clients"). A bounded
    # psycopg pool instead: requests wait for a free connection.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("ONFH_DB_POOL_MAX", default=10),
        "timeout": env.float("ONFH_DB_POOL_TIMEOUT_S", default=30.0),
    }
elif not DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- files ----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

ONFH_STORAGE = env.str("ONFH_STORAGE", default="filesystem")
if ONFH_STORAGE == "s3":
    # AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... are read by
    # django-storages from the environment; files stay private (served through the API).
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            # Checked at start-up (grading.services.storage): a clear error, not a 500.
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME", default=""),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default=None),
            "location": env.str("AWS_LOCATION", default=""),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- upload limits ---------------------------------------------------------------------
ONFH_MAX_UPLOAD_BYTES = env.int("ONFH_MAX_UPLOAD_BYTES", default=2 * 1024**3)
ONFH_MAX_ZIP_UNCOMPRESSED_BYTES = env.int("ONFH_MAX_ZIP_UNCOMPRESSED_BYTES", default=4 * 1024**3)
ONFH_MAX_ZIP_RATIO = env.float("ONFH_MAX_ZIP_RATIO", default=100.0)
ONFH_MAX_ZIP_ENTRIES = env.int("ONFH_MAX_ZIP_ENTRIES", default=20000)
# The DICOM receiver (manage.py dicom_scp; started by make run): its AE title is also the
# C-MOVE destination the portal names when it retrieves from a PACS.
ONFH_SCP_AE_TITLE = env.str("ONFH_SCP_AE_TITLE", default="ONFH")
ONFH_SCP_PORT = env.int("ONFH_SCP_PORT", default=11112)
ONFH_SCP_HOST = env.str("ONFH_SCP_HOST", default="127.0.0.1")
# Sending results to a PACS: attempts in all, and the first retry's wait (doubled each time).
ONFH_PACS_SEND_ATTEMPTS = env.int("ONFH_PACS_SEND_ATTEMPTS", default=6)
ONFH_PACS_RETRY_BASE_S = env.float("ONFH_PACS_RETRY_BASE_S", default=30.0)
# A send queued, sending or waiting to retry with no progress for this long has lost its
# worker message: the sweep sends it again (or fails it, attempts used up). Longer than the
# longest retry wait (600 s); a "sending" send is taken over only once its worker process
# is gone (or, claimed on another host, quiet past this and the task's hard time limit),
# so a send still running is never doubled.
ONFH_PACS_SEND_STALE_S = env.float("ONFH_PACS_SEND_STALE_S", default=900.0)
# WADO-RS frames: the most different frames one request may ask for (issue 13, item 10).
ONFH_WADO_MAX_FRAMES = env.int("ONFH_WADO_MAX_FRAMES", default=1024)
# Processes that check uploaded files in parallel (-1: up to 2, by CPU count; 0: none).
ONFH_INGEST_PROCESSES = env.int("ONFH_INGEST_PROCESSES", default=-1)
# Django must let the API see a large multipart body; the ingest service enforces the limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=ONFH_MAX_UPLOAD_BYTES)
# A JSON request body (grades, masks, consults ...): a 413 past this, before it is read.
ONFH_MAX_JSON_BODY_BYTES = env.int("ONFH_MAX_JSON_BODY_BYTES", default=64 * 1024**2)
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=5000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2
FILE_UPLOAD_TEMP_DIR = None

# --- engine ---------------------------------------------------------------------------
ONFH_DEVICE = env.str("ONFH_DEVICE", default="auto")  # cpu | cuda | auto
ONFH_WEIGHTS = env.str("ONFH_WEIGHTS", default="") or None  # None: the shipped weights
ONFH_TORCH_THREADS = env.int("ONFH_TORCH_THREADS", default=0)  # 0: torch's default
# An analysis whose heartbeat is older than this is taken to belong to a dead worker.
ONFH_STALE_AFTER_S = env.float("ONFH_STALE_AFTER_S", default=60.0)
ONFH_HEARTBEAT_S = env.float("ONFH_HEARTBEAT_S", default=10.0)
ONFH_SWEEP_EVERY_S = env.float("ONFH_SWEEP_EVERY_S", default=30.0)
ONFH_RESEND_QUEUED_AFTER_S = env.float("ONFH_RESEND_QUEUED_AFTER_S", default=900.0)
ONFH_MAX_ANALYSIS_ATTEMPTS = env.int("ONFH_MAX_ANALYSIS_ATTEMPTS", default=3)
# A series is analysed only once no upload or association is still bringing its
# instances and none has arrived for this many seconds.
ONFH_INGEST_QUIET_S = env.float("ONFH_INGEST_QUIET_S", default=5.0)
# An upload or association that has not ended after this long is taken for dead.
ONFH_INGEST_MARK_TTL_S = env.float("ONFH_INGEST_MARK_TTL_S", default=3600.0)
# Load the model when a worker process starts (not on the first task).
ONFH_PRELOAD_SEGMENTER = env.bool("ONFH_PRELOAD_SEGMENTER", default=True)
ONFH_DEMO_PASSWORD = env.str("ONFH_DEMO_PASSWORD", default="")
# The key that remaps Study/Series UIDs in research exports (empty: derived from
# SECRET_KEY). Keep it outside the database and its backups.
ONFH_RESEARCH_KEY = env.str("ONFH_RESEARCH_KEY", default="")

# --- Celery -----------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
# (kombu ignores the host of the file-system transport; naming one silences a warning)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": env.float("ONFH_BROKER_POLL_S", default=0.1),
    }
else:
    # Unacknowledged messages come back after this long on Redis (acks_late).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if env.str("ONFH_BROKER_KEY_PREFIX", default=""):
        # Several portals (or test runs) can share one Redis without seeing each other's
        # queues.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env.str("ONFH_BROKER_KEY_PREFIX")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("ONFH_TASK_SOFT_TIME_LIMIT_S", default=600)
CELERY_TASK_TIME_LIMIT = env.int("ONFH_TASK_TIME_LIMIT_S", default=660)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Model work on `gpu` (one worker process per GPU); storing, notifying, sweeping on `default`.
CELERY_TASK_ROUTES = {"grading.tasks.analyse_series": {"queue": "gpu"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that sends a task does not hang for long when the broker is away (the
# workers' sweep sends what could not be sent).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False

# --- Channels -----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env.str("ONFH_CHANNELS_PREFIX", default="asgi"),
            },
        }
    }
else:
    # The worker is another process, so it cannot reach this layer: it writes OutboxMessage
    # rows and the ASGI process relays them (grading.services.notify).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ONFH_OUTBOX_POLL_S = env.float("ONFH_OUTBOX_POLL_S", default=0.5)

# --- cache (rate limits) -------------------------------------------------------------------
# Counters for the rate limits (django-ratelimit): in Redis when there is one, so every
# web process counts together; in the embedded mode's single web process, in memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("ONFH_CACHE_PREFIX", default="onfh"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Patient share-link views (page, PDF, also 404s and 410s) per client address; beyond it 429.
ONFH_PATIENT_LINK_RATE = env.str("ONFH_PATIENT_LINK_RATE", default="30/m")
# Repeated views of one link (same page or PDF, same outcome, same address) within this
# many seconds are audited once.
ONFH_PATIENT_LINK_AUDIT_WINDOW_S = env.int("ONFH_PATIENT_LINK_AUDIT_WINDOW_S", default=3600)
# A person's repeated views of one study (the viewer polls it while an analysis runs)
# within this many seconds are audited once: the first view always, then at most one
# ``study.view`` per person, study and window. 0 audits every view.
ONFH_STUDY_VIEW_AUDIT_WINDOW_S = env.int("ONFH_STUDY_VIEW_AUDIT_WINDOW_S", default=600)

# --- DRF -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "grading.apis.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies bounded in size and nesting (grading.apis.common.BoundedJSONParser).
    "DEFAULT_PARSER_CLASSES": [
        "grading.apis.common.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("ONFH_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ONFH grading portal API",
    "DESCRIPTION": (
        "Grades osteonecrosis of the femoral head on hip MRI. "
        "Research and teaching software, not a medical device."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- audit trail ----------------------------------------------------------------------
# The HMAC key of the audit chain: never in the database, so rows rewritten in SQL cannot
# be re-chained. Several hosts must share one key (set ONFH_AUDIT_KEY); without it the
# key is generated once under VAR_DIR (0600). docs/operations.md: "The audit key".
ONFH_AUDIT_KEY = env.str("ONFH_AUDIT_KEY", default="") or _embedded_secret("audit_key")
# Signed checkpoints of the chain head, appended outside the database.
ONFH_AUDIT_CHECKPOINT_FILE = Path(
    env.str("ONFH_AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit-checkpoints.jsonl"))
)
ONFH_AUDIT_CHECKPOINT_EVERY = env.int("ONFH_AUDIT_CHECKPOINT_EVERY", default=100)  # events
ONFH_AUDIT_CHECKPOINT_EVERY_S = env.float("ONFH_AUDIT_CHECKPOINT_EVERY_S", default=300.0)

# API tokens (POST /api/auth/token/, the "API tokens" page) stop working after this many
# days, and at once when the user's password changes.
ONFH_API_TOKEN_TTL_DAYS = env.int("ONFH_API_TOKEN_TTL_DAYS", default=30)

# Behind a reverse proxy that appends X-Forwarded-For, the audit trail records its entry.
ONFH_TRUST_X_FORWARDED_FOR = env.bool("ONFH_TRUST_X_FORWARDED_FOR", default=False)

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG and env.bool("ONFH_SECURE_COOKIES", default=False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- sign-in, second factor, throttling and production hardening --------------------------
# (grading.accounts; the operator's guide is docs/operations.md, "Sign-in" and "Hardening")
INSTALLED_APPS += [
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    "grading.accounts",
]
_after_auth = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
MIDDLEWARE[_after_auth:_after_auth] = [
    "django_otp.middleware.OTPMiddleware",
    "grading.accounts.middleware.SecondFactorMiddleware",
]
MIDDLEWARE.insert(1, "csp.middleware.CSPMiddleware")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes asks

# Hospital identity provider (OpenID Connect, mozilla-django-oidc): on when a client id is set.
ONFH_OIDC_ENABLED = bool(env.str("ONFH_OIDC_CLIENT_ID", default=""))
OIDC_RP_CLIENT_ID = env.str("ONFH_OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("ONFH_OIDC_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("ONFH_OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("ONFH_OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("ONFH_OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("ONFH_OIDC_JWKS_ENDPOINT", default="")
OIDC_OP_ISSUER = env.str("ONFH_OIDC_ISSUER", default="")
OIDC_RP_SIGN_ALGO = env.str("ONFH_OIDC_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("ONFH_OIDC_SCOPES", default="openid email profile groups")
OIDC_USE_PKCE = True
LOGIN_REDIRECT_URL_FAILURE = "/login/?idp=failed"  # the login page says so
ONFH_OIDC_GROUPS_CLAIM = env.str("ONFH_OIDC_GROUPS_CLAIM", default="groups")
ONFH_OIDC_BUTTON = env.str("ONFH_OIDC_BUTTON", default="Sign in with the hospital account")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesBackend",  # first: refuses a locked-out account or address
    "django.contrib.auth.backends.ModelBackend",
    *(["grading.accounts.oidc.SiteMappingOIDCBackend"] if ONFH_OIDC_ENABLED else []),
]

OTP_TOTP_ISSUER = env.str("ONFH_TOTP_ISSUER", default="ONFH portal")  # the authenticator's label

# Login throttling (django-axes): per account and per address, then a cool-down.
AXES_FAILURE_LIMIT = env.int("ONFH_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("ONFH_LOGIN_COOLOFF_MINUTES", default=15.0) / 60  # hours
# Each entry locks on its own: an account from any address, an address for any account.
AXES_LOCKOUT_PARAMETERS = env.list("ONFH_LOGIN_LOCKOUT_BY", default=["username", "ip_address"])
AXES_CLIENT_IP_CALLABLE = "grading.apis.common.client_address"
AXES_LOCKOUT_CALLABLE = "grading.accounts.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# A body larger than this needs valid credentials on its headers (onfh_site.body_guard).
ONFH_ANONYMOUS_BODY_BYTES = env.int("ONFH_ANONYMOUS_BODY_BYTES", default=1024 * 1024)

# Production switch: TLS-only cookies, HSTS, redirect to https, shorter sessions. Off in
# the embedded mode (plain http on loopback); the reverse-proxy recipe switches it on.
ONFH_PRODUCTION = env.bool("ONFH_PRODUCTION", default=False)
SESSION_COOKIE_AGE = env.int("ONFH_SESSION_SECONDS", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the viewer reads it for its API calls
if ONFH_PRODUCTION or (not DEBUG and env.bool("ONFH_SECURE_COOKIES", default=False)):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
if ONFH_PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("ONFH_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("ONFH_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("ONFH_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("ONFH_HSTS_PRELOAD", default=True)  # eligible, not submitted
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a TLS proxy that sets X-Forwarded-Proto (the nginx recipe does), so share links
# and redirects are built as https://.
if env.bool("ONFH_BEHIND_TLS_PROXY", default=ONFH_PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

from csp.constants import NONCE as _CSP_NONCE  # noqa: E402

# Content-Security-Policy (django-csp). The Cornerstone viewer decodes in web workers
# started from blob: URLs and compiles WebAssembly codecs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        # a nonce for the two small inline scripts (study prefetch, consult badge)
        "script-src": ["'self'", "'wasm-unsafe-eval'", _CSP_NONCE],
        "worker-src": ["'self'", "blob:"],
        "img-src": ["'self'", "data:", "blob:"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "connect-src": ["'self'", "ws:", "wss:"] if not ONFH_PRODUCTION else ["'self'", "wss:"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *([OIDC_OP_AUTHORIZATION_ENDPOINT] if ONFH_OIDC_ENABLED else [])],
    }
}
