"""Settings for targetadmin, read from environment variables.

Every variable is documented in ``.env.example``. The readers (targetadmin/environment.py)
refuse values they do not understand instead of guessing, so a typo stops the process at
start-up.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from adapters.local_state import create_private_file
from targetadmin import metrics_directory
from targetadmin.environment import (
    BASE_DIR,
    env_bool,
    env_int,
    env_list,
    env_networks,
    env_str,
    json_logging,
    var_dir,
)

# Lets admin classes and other generics be subscripted at run time, as the type stubs want.
django_stubs_ext.monkeypatch()

VAR_DIR = var_dir()
# Before anything imports prometheus_client (docs/operations.md#metrics).
METRICS_DIR = metrics_directory.prepare()


def _local_secret_key() -> str:
    """A per-installation key kept in var/, so local runs need no configuration."""
    path = VAR_DIR / "secret-key"
    if not path.exists():
        create_private_file(path, secrets.token_urlsafe(50))
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],.localhost")

# Proxies whose X-Forwarded-For is believed (docs/operations.md#configuration): the caller's
# address is the right-most entry that is not one of them (profiles.access.addresses).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# HTTPS. HTTPS_ONLY=true is the production switch: redirect plain HTTP, secure cookies, and
# HSTS for a year with subdomains and preload; each part can be set on its own. Behind a proxy that terminates
# TLS, TRUST_X_FORWARDED_PROTO=true makes its X-Forwarded-Proto header count (set it only
# when the proxy overwrites that header). /healthz stays reachable over plain HTTP for load
# balancers' probes.
HTTPS_ONLY = env_bool("HTTPS_ONLY", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS_ONLY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS_ONLY)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS_ONLY)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS_ONLY)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    # Before django_tasks_db: its db_worker command is profiles' (a heartbeat added).
    "profiles",
    "django_tasks_db",
    "axes",
]

MIDDLEWARE = [
    # The profile APIs take API_MIDDLEWARE below instead of the rest of this list.
    "profiles.api.paths.ApiPathsMiddleware",
    "profiles.edge.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Before the CSRF check, which would read a chunked form as empty.
    "targetadmin.request_bodies.ChunkedBodiesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees every failed sign-in, whether from the login form or HTTP Basic.
    "axes.middleware.AxesMiddleware",
]

# What the profile APIs' paths go through (profiles/api/paths.py,
# docs/operations.md#the-api-path): none of the pages' sessions, CSRF, sign-in or messages.
API_MIDDLEWARE = [
    "profiles.edge.request_log.RequestLogMiddleware",
    "profiles.api.paths.ApiHeadersMiddleware",
]

ROOT_URLCONF = "targetadmin.urls"
WSGI_APPLICATION = "targetadmin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "profiles.pages.navigation.navigation",
                "profiles.pages.sign_in.single_sign_on",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'targetadmin.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A kept connection the database dropped is replaced, not handed to a request.
        conn_health_checks=True,
    )
}
# The profile APIs' own statements are prepared once per PostgreSQL connection (profiles/
# store/reads.py); off for a pooler that cannot keep prepared statements.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend, checking a kept connection only after idle time
    # (adapters/postgresql, docs/operations.md#database-connections).
    DATABASES["default"]["ENGINE"] = "adapters.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend with writers queued one after another (adapters/sqlite,
    # docs/operations.md#sqlite-writers) instead of sleeping in SQLite's busy handler.
    DATABASES["default"]["ENGINE"] = "adapters.sqlite"
    # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock at
    # BEGIN, so concurrent writers queue instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20, minimum=1),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if env_bool("SQLITE_CLOSE_CONNECTIONS", False) else 60

# On SQLite, single updates that arrive together in one process share one transaction
# (profiles/ingest/group_commit.py, docs/operations.md#group-commit).
SINGLE_UPDATE_GROUP_COMMIT = env_bool("SINGLE_UPDATE_GROUP_COMMIT", True)

# The database cache is shared by every worker process and every host without another
# service to run, and test databases start with it empty. It holds the profile APIs'
# authentication-failure counts (written only when a call is refused). Its table is created
# by `migrate` (profiles/migrations) and by `manage.py createcachetable`.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "targetadmin_cache",
        # Room for one failure count per address during an attack from many addresses.
        "OPTIONS": {"MAX_ENTRIES": env_int("CACHE_MAX_ENTRIES", 100_000, minimum=300)},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed sign-ins are counted per username and address (django-axes): the login form and the
# management API's HTTP Basic both go through authenticate(request=...), so they share it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "profiles.access.passwords.PasswordBackend",
    "profiles.pages.single_sign_on.ProviderBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "profiles.pages.lockout.lockout_response"
# The sign-in lockout counts by the same caller address as everything else (TRUSTED_PROXIES),
# an IPv6 caller by its /64 as the throttles do.
AXES_CLIENT_IP_CALLABLE = "profiles.access.addresses.caller_counted_as"
AXES_VERBOSE = False  # no start-up banner on every manage.py command's stderr

# Single sign-on with OpenID Connect (docs/operations.md#single-sign-on), through
# mozilla-django-oidc: on when OIDC_ISSUER names the provider, whose endpoints and keys come
# from its discovery document. Unset, people sign in with a local password, as before.
OIDC_ISSUER = env_str("OIDC_ISSUER", "").rstrip("/")
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
if OIDC_ISSUER and not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
# The claim holding the groups (or roles), a dotted path into nested claims
# (realm_access.roles), and the prefix of the groups that grant roles: <prefix><client>:<role>.
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_GROUP_PREFIX = env_str("OIDC_GROUP_PREFIX", "targetadmin:")
# The audience the provider's access tokens name when scripts call the management API.
OIDC_API_AUDIENCE = env_str("OIDC_API_AUDIENCE", OIDC_RP_CLIENT_ID)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1)
# Authorization code flow with PKCE and a nonce; the ID token is kept in the session only
# as the hint the provider's logout asks for.
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
OIDC_OP_LOGOUT_URL_METHOD = "profiles.pages.single_sign_on.provider_logout_url"
_SIGN_OUT_ORIGINS = ["{0.scheme}://{0.netloc}".format(urlsplit(OIDC_ISSUER))] if OIDC_ISSUER else []
# PASSWORD_SIGN_IN=false: people sign in only through the provider and scripts only with its
# access tokens; a superuser keeps a password for the Django admin (break-glass).
PASSWORD_SIGN_IN = env_bool("PASSWORD_SIGN_IN", True)
if not PASSWORD_SIGN_IN and not OIDC_ISSUER:
    raise ImproperlyConfigured("PASSWORD_SIGN_IN=false needs single sign-on: set OIDC_ISSUER")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Pages: a strict Content-Security-Policy (a script or a <style> runs only from this origin
# or with the request's nonce, `{% csp_nonce_attr %}`), no framing, no MIME sniffing, no
# referrer sent to other sites, and sessions that end. Cookie flags for HTTPS are set with
# the production switches above.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    # Bootstrap draws its form controls' icons with data: SVG backgrounds.
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    # Signing out sends the form's answer on to the identity provider's logout.
    "form-action": [CSP.SELF, *_SIGN_OUT_ORIGINS],
    "frame-ancestors": [CSP.NONE],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 60 * 60, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# One JSON object per line on stderr (profiles/edge/request_log.py), request lines included.
LOGGING = json_logging(
    {
        # runserver's own request lines carry query strings; the JSON request line says
        # the same without them.
        "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
    }
)


def _fernet_keys(name: str, text: str) -> tuple[str, ...]:
    """Fernet keys, comma- or line-separated; one that is not a key stops the process,
    named by its position, never by its value."""
    keys = tuple(key.strip() for key in text.replace("\n", ",").split(",") if key.strip())
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


# Retrievable tokens (docs/tokens.md#retrievable-tokens) are kept encrypted with these keys:
# the first encrypts, every one decrypts, so a new key goes first and an old one stays until
# no token needs it. Unset: the key file `make run` creates (bin/run, `manage.py
# create_local_token_key`); in production a missing key is a start-up error while any
# client has the option on (profiles.tokens.checks).
TOKEN_ENCRYPTION_KEY_FILE = VAR_DIR / "token-encryption-key"
TOKEN_ENCRYPTION_KEYS = _fernet_keys(
    "TOKEN_ENCRYPTION_KEYS",
    os.environ.get("TOKEN_ENCRYPTION_KEYS")
    or (TOKEN_ENCRYPTION_KEY_FILE.read_text() if TOKEN_ENCRYPTION_KEY_FILE.exists() else ""),
)

# Product settings (docs/operations.md#limits-and-retention).
TOKEN_EXPIRY_CHOICES_DAYS = (1, 7, 30, 90, 180, 365)
TOKEN_DEFAULT_EXPIRY_DAYS = 90
TOKEN_EXPIRY_WARNING_DAYS = 7
PROFILE_LIFETIME_DAYS = env_int("PROFILE_LIFETIME_DAYS", 14, minimum=1, maximum=90)

# Profile APIs (docs/api.md#authentication): refused calls from one address past the limit within
# the window are answered 429 until the window ends.
PROFILE_API_AUTH_FAILURE_LIMIT = env_int("PROFILE_API_AUTH_FAILURE_LIMIT", 20, minimum=1)
PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS = env_int(
    "PROFILE_API_AUTH_FAILURE_WINDOW_SECONDS", 300, minimum=1
)
# Management API (docs/management-api.md#throttling-by-address): failed HTTP Basic sign-ins
# from one address past the limit within the window are answered 429 before any password
# is hashed, until the window ends.
MANAGEMENT_API_BASIC_FAILURE_LIMIT = env_int("MANAGEMENT_API_BASIC_FAILURE_LIMIT", 20, minimum=1)
MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS = env_int(
    "MANAGEMENT_API_BASIC_FAILURE_WINDOW_SECONDS", 300, minimum=1
)

# Bulk ingestion (docs/api.md#batch-file-update, docs/operations.md#limits-and-retention).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Where uploaded batch files wait for a worker (docs/operations.md#batch-storage): a
# directory (BATCH_DIR) for one host, the database or an S3-compatible bucket for several.
BATCH_DIR = Path(env_str("BATCH_DIR", str(VAR_DIR / "batches")))
_BATCH_STORAGES = {
    "directory": "profiles.ingest.storage.DirectoryStorage",
    "database": "profiles.ingest.storage.DatabaseStorage",
    "s3": "profiles.ingest.object_storage.ObjectStorage",
}
BATCH_STORAGE = env_str("BATCH_STORAGE", "directory")
if BATCH_STORAGE not in _BATCH_STORAGES:
    raise ImproperlyConfigured(
        f"BATCH_STORAGE must be directory, database or s3, not {BATCH_STORAGE!r}"
    )
_batch_storage_options: dict[str, object] = {}
if BATCH_STORAGE == "s3":
    _batch_storage_options = {
        "bucket_name": os.environ.get("BATCH_S3_BUCKET") or "",
        "endpoint_url": os.environ.get("BATCH_S3_ENDPOINT_URL") or None,
        "region_name": os.environ.get("BATCH_S3_REGION") or None,
        "location": env_str("BATCH_S3_PREFIX", "batches"),
    }
    if not _batch_storage_options["bucket_name"]:
        raise ImproperlyConfigured("BATCH_STORAGE=s3 needs BATCH_S3_BUCKET")
STORAGES["batches"] = {
    "BACKEND": _BATCH_STORAGES[BATCH_STORAGE],
    "OPTIONS": _batch_storage_options,
}
BATCH_MAX_BYTES = env_int("BATCH_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
BATCH_MAX_ROWS = env_int("BATCH_MAX_ROWS", 500_000, minimum=1)
BATCH_CHUNK_ROWS = env_int("BATCH_CHUNK_ROWS", 10_000, minimum=1)
# A chunk also stops at this many cells (rows times columns) and bytes of the file, so the
# worker's memory stays bounded for wide rows and long values (docs/operations.md#configuration).
BATCH_CHUNK_CELLS = env_int("BATCH_CHUNK_CELLS", 100_000, minimum=1)
BATCH_CHUNK_BYTES = env_int("BATCH_CHUNK_BYTES", 2 * 1024 * 1024, minimum=1)
# The worker sizes each chunk so that its transaction takes about this long: on SQLite it
# holds the one write lock, and single updates wait behind it (docs/operations.md#sqlite-writers).
BATCH_CHUNK_MILLISECONDS = env_int("BATCH_CHUNK_MILLISECONDS", 20, minimum=1)
BATCH_RETENTION_DAYS = env_int("BATCH_RETENTION_DAYS", 30, minimum=1)
BATCH_STALL_SECONDS = env_int("BATCH_STALL_SECONDS", 120, minimum=1)
BATCH_MAX_ATTEMPTS = env_int("BATCH_MAX_ATTEMPTS", 3, minimum=1)
BATCH_IDEMPOTENCY_HOURS = 24
BULK_SUBMISSIONS_PER_MINUTE = env_int("BULK_SUBMISSIONS_PER_MINUTE", 50, minimum=1)
JSON_BULK_INLINE_PROFILES = 1_000
JSON_BULK_MAX_BYTES = env_int("JSON_BULK_MAX_BYTES", 10 * 1024 * 1024, minimum=1)

# E-mail (docs/operations.md#e-mail): the token expiry reminders, through Django's mailers.
# By default they are printed on standard output (make run shows them); production sends
# them over SMTP: EMAIL_BACKEND=smtp and the EMAIL_* variables below.
_MAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}
_mail_backend = env_str("EMAIL_BACKEND", "console")
if _mail_backend not in _MAIL_BACKENDS and "." not in _mail_backend:
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND must be console, smtp or a backend's dotted path, not {_mail_backend!r}"
    )
_mail_backend = _MAIL_BACKENDS.get(_mail_backend, _mail_backend)
_mail_options: dict[str, object] = {}
if _mail_backend == _MAIL_BACKENDS["smtp"]:
    _mail_options = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25, minimum=1, maximum=65535),
        "username": env_str("EMAIL_HOST_USER", ""),
        "password": env_str("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", False),
        "use_ssl": env_bool("EMAIL_USE_SSL", False),
        "timeout": env_int("EMAIL_TIMEOUT", 30, minimum=1),
    }
    if _mail_options["use_tls"] and _mail_options["use_ssl"]:
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
MAILERS = {"default": {"BACKEND": _mail_backend, "OPTIONS": _mail_options}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "targetadmin <targetadmin@localhost>")
# The address people reach targetadmin at, for links in e-mails.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Metrics (docs/operations.md#metrics): /metrics in Prometheus' text format, for a bearer
# token of its own, from allowed networks, or both; off (404, nothing counted) with neither.
# Only the token's SHA-256 digest is kept.
METRICS_TOKEN_MIN_LENGTH = 32
_metrics_token = os.environ.get("METRICS_TOKEN", "")
if _metrics_token and len(_metrics_token) < METRICS_TOKEN_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters long"
    )
METRICS_TOKEN_DIGEST = hashlib.sha256(_metrics_token.encode()).hexdigest() if _metrics_token else ""
del _metrics_token
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS")
# Seconds between the task worker's heartbeats (targetadmin_worker_last_heartbeat_...).
WORKER_HEARTBEAT_SECONDS = 15
