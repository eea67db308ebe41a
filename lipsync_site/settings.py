"""Settings for Lipsync Studio, all read from the environment with safe defaults.

Embedded default: SQLite (WAL, IMMEDIATE transactions) and the django-q2 ORM
broker, media on local disk, DEBUG off. DATABASE_URL switches to PostgreSQL;
REDIS_URL switches the django-q2 broker and the cache to Redis.
"""

import base64
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .env import env_bool, env_float, env_int, env_list, env_str, env_url
from .media_storage import media_storage

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
        return key
    # Embedded default: one random key per installation, kept beside the data,
    # so sessions survive restarts without anyone having to invent a key.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

# The address the providers use to fetch inputs and send webhooks, and the one
# people open. Defaults to the run command's local address.
PORT = env_int("PORT", 8000, minimum=1)
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}")
_public_host = PUBLIC_BASE_URL.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", sorted({"localhost", "127.0.0.1", "[::1]", _public_host}))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_q",
    "axes",
    "ninja",  # the REST API (jobs/api): schemas, OpenAPI, its bundled docs UI
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The REST API's paths answer errors as JSON (404, 405, 413, 500) and
    # refuse a body over its limit before anything reads it.
    "jobs.api.middleware.ApiErrorMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Refuses a request declaring more than its view takes, before the CSRF
    # check reads the body.
    "jobs.studio.upload_limits.UploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as axes asks: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "lipsync_site.urls"
WSGI_APPLICATION = "lipsync_site.wsgi.application"

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
                # csp_nonce: the admin's few inline <style> carry it ({% csp_nonce_attr %}).
                "django.template.context_processors.csp",
                "jobs.accounts.context_processors.studio",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    except ValueError:
        # Not the value itself: it may hold a password.
        raise ImproperlyConfigured("DATABASE_URL is not a URL the studio can read") from None
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...)")
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # SQLITE_PATH: another file (the integration tests point the
            # processes they start at pytest's test database).
            "NAME": Path(env_str("SQLITE_PATH", str(DATA_DIR / "db.sqlite3"))),
            # Each web thread keeps its connection: opening one (and running
            # the pragmas below) per request cost signed-in pages more than
            # their queries (bench/RESULTS.md, load.py).
            "CONN_MAX_AGE": 60,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two processes never
                # deadlock upgrading a read lock; WAL lets readers run beside a writer.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=20000;"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and task queue -----------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, reusing its redis-py clients (see the module).
            "BACKEND": "lipsync_site.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "lipsync"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The Studio's per-member card stamps (jobs/models/card_stamps.py) live in the
# cache only when every process shares it; a local-memory cache is per process.
CARD_STAMPS_IN_CACHE = bool(REDIS_URL)
if REDIS_URL:
    # Sessions read from Redis, written through to the database: a signed-in
    # request (every card update) makes one query fewer. Not with the
    # local-memory cache: a sign-out in one process would not reach another's.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# timeout < retry, or the ORM broker hands a slow task out a second time.
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "lipsync"),
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": env_int("Q_TIMEOUT", 240, minimum=10),
    "retry": env_int("Q_RETRY", 300, minimum=20),
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Task queue",
    # Every task inline, in the caller's thread (benches; tests/settings.py).
    "sync": env_bool("Q_SYNC", False),
}
if Q_CLUSTER["retry"] <= Q_CLUSTER["timeout"]:
    raise ImproperlyConfigured("Q_RETRY must be larger than Q_TIMEOUT")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# --- Auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    # First: refuses any sign-in, ours or the admin's, while it is paused.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login throttling (django-axes; see jobs/login_throttle.py and the README).
# Wrong passwords for one account from one address, and from one address
# whatever the account, pause sign-ins there for the cool-off.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
# In this order: jobs.login_throttle gives each its limit (the two above).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "jobs.accounts.login_throttle.LoginThrottle"
AXES_CLIENT_IP_CALLABLE = "jobs.accounts.login_throttle.client_address"
AXES_LOCKOUT_CALLABLE = "jobs.accounts.auth.login_locked_out"
# Tries during a pause do not extend it: nobody can be kept out for good.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# "In a row": a member who gets in starts again from zero.
AXES_RESET_ON_SUCCESS = True
# Staff see every failure in the admin (Access failures), not only the current counts.
AXES_ENABLE_ACCESS_FAILURE_LOG = True

# --- I18N ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
# Unset, a bucket name alone chooses S3; STORAGE_BACKEND=s3 without one is an
# error of the system check (jobs/checks.py), which names the variable.
STORAGE_BACKEND = (
    env_str("STORAGE_BACKEND", "s3" if env_str("AWS_STORAGE_BUCKET_NAME") else "local")
    .strip()
    .lower()
)
if STORAGE_BACKEND not in ("local", "s3"):
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be local or s3, got {STORAGE_BACKEND!r}")
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME").strip()
AWS_S3_ENDPOINT_URL = env_url("AWS_S3_ENDPOINT_URL", "")
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME").strip()
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID").strip()
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY").strip()
AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE", "auto").strip().lower() or "auto"
if AWS_S3_ADDRESSING_STYLE not in ("auto", "path", "virtual"):
    raise ImproperlyConfigured(
        f"AWS_S3_ADDRESSING_STYLE must be auto, path or virtual, got {AWS_S3_ADDRESSING_STYLE!r}"
    )
# Life of the signed links a member's browser is redirected to for playback
# (the studio checks who may see the file first, on every request).
STORAGE_URL_MAX_AGE = env_int("STORAGE_URL_MAX_AGE", 300, minimum=30)
# Inputs, outputs and posters go through Django's storage API only: the local
# disk, or an S3-compatible bucket that every node shares (media_storage.py).
_default_storage, STORAGE_ORIGINS = media_storage(
    backend=STORAGE_BACKEND,
    bucket=AWS_STORAGE_BUCKET_NAME,
    endpoint_url=AWS_S3_ENDPOINT_URL,
    region=AWS_S3_REGION_NAME,
    access_key=AWS_ACCESS_KEY_ID,
    secret_key=AWS_SECRET_ACCESS_KEY,
    addressing_style=AWS_S3_ADDRESSING_STYLE,
    url_max_age=STORAGE_URL_MAX_AGE,
)
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# The largest file a member may upload. A request may declare that much per
# file its view takes, plus DATA_UPLOAD_MAX_MEMORY_SIZE for the other fields;
# more is refused before it is read (jobs/upload_limits.py).
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 500, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Every file streams to a temporary file (the decoders want a path), and no
# more than MAX_UPLOAD_MB of it.
FILE_UPLOAD_HANDLERS = ["jobs.studio.upload_limits.LimitedUploadHandler"]

# --- Security (see README: "Running in production") ---------------------------
_https = PUBLIC_BASE_URL.startswith("https://")
BEHIND_HTTPS_PROXY = env_bool("BEHIND_HTTPS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_HTTPS_PROXY else None
# Reverse proxies in front that append the client's address to X-Forwarded-For;
# 0 trusts no header and takes the connection's address (login throttling).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if BEHIND_HTTPS_PROXY else 0, minimum=0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _https)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _https)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: only our own files run or style a page. Our templates
# have no inline script, event handler or style attribute, and htmx runs without
# eval (templates/base.html). The nonce is for Django's admin, whose templates put
# it on the odd inline <style> (a change list without actions).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    # With S3 storage, posters and videos come from the store by signed redirect.
    "img-src": [CSP.SELF, *STORAGE_ORIGINS],
    "media-src": [CSP.SELF, *STORAGE_ORIGINS],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SESSION_COOKIE_HTTPONLY = True

# --- Studio -------------------------------------------------------------------
TEAM_NAME = env_str("TEAM_NAME", "Lipsync Studio")
LEDGER_PAGE_SIZE = 25
MAX_MEDIA_SECONDS = 600  # both providers stop at 10 minutes

# --- Providers ----------------------------------------------------------------
# A provider's enabled account in the admin (Provider accounts) wins; else the
# base URL and key here; with neither, its jobs go to the sandbox (see README).
JOYPIX_BASE_URL = env_url("JOYPIX_BASE_URL", "")
JOYPIX_API_KEY = env_str("JOYPIX_API_KEY", "")
LIPSYNC_STUDIO_BASE_URL = env_url("LIPSYNC_STUDIO_BASE_URL", "")
LIPSYNC_STUDIO_API_KEY = env_str("LIPSYNC_STUDIO_API_KEY", "")


def _provider_keys_secret() -> str:
    """The Fernet key that encrypts provider API keys stored in the admin.

    Set PROVIDER_KEYS_SECRET to keep stored keys readable whatever happens to
    SECRET_KEY. Unset, it is derived from SECRET_KEY (HKDF-SHA256), so the
    embedded default works with nothing to configure; but then changing
    SECRET_KEY makes the stored keys unreadable, and staff must re-enter them.
    """
    raw = env_str("PROVIDER_KEYS_SECRET").strip()
    if not raw:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"lipsync-studio provider keys v1",
        ).derive(SECRET_KEY.encode())
        return base64.urlsafe_b64encode(derived).decode()
    try:
        Fernet(raw)
    except ValueError:
        # Never the value: it is a secret.
        raise ImproperlyConfigured(
            "PROVIDER_KEYS_SECRET must be a Fernet key (32 random bytes in URL-safe "
            "base64, 44 characters); make one with: python -c "
            '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None
    return raw


# Encrypts the provider keys stored in the admin (Provider accounts), which win
# over the variables above. Unset: derived from SECRET_KEY (see the function).
PROVIDER_KEYS_SECRET = _provider_keys_secret()
SANDBOX_PORT = env_int("SANDBOX_PORT", 8010, minimum=1)
SANDBOX_URL = env_url("SANDBOX_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
SANDBOX_API_KEY = env_str("SANDBOX_API_KEY", "sandbox-key")
# Seconds of processing per second of video in the sandbox (real providers: 15-25).
SANDBOX_RTF = env_float("SANDBOX_RTF", 0.2, minimum=0)

# Studio credits a staff member can grant themselves with one click when they
# run short (the first run: the printed staff login starts with none).
STARTER_CREDITS = env_int("STARTER_CREDITS", 1000, minimum=1)

# --- Job pipeline ---------------------------------------------------------------
PROVIDER_CONNECT_TIMEOUT = env_float("PROVIDER_CONNECT_TIMEOUT", 5, minimum=0.1)
PROVIDER_READ_TIMEOUT = env_float("PROVIDER_READ_TIMEOUT", 30, minimum=0.1)
# A refused submission (429, 502, 503, connection refused) is tried this often.
JOB_MAX_SUBMIT_ATTEMPTS = env_int("JOB_MAX_SUBMIT_ATTEMPTS", 6, minimum=1)
# A job still "submitting" after this long lost its worker mid-request.
JOB_SUBMITTING_STUCK_SECONDS = env_int("JOB_SUBMITTING_STUCK_SECONDS", 180, minimum=1)
# A job still processing after max(this, 2 x its expected time) is failed
# (its owner may stop waiting from 1.5 x; jobs.pipeline.lifecycle).
JOB_PROCESSING_TIMEOUT_SECONDS = env_int("JOB_PROCESSING_TIMEOUT_SECONDS", 1800, minimum=1)
# An archive's claim on its job, renewed while the download progresses: a
# worker that dies mid-download gives the job up to another within this.
JOB_ARCHIVE_LEASE_SECONDS = env_int("JOB_ARCHIVE_LEASE_SECONDS", 60, minimum=4)
# A task the provider answers "not found" this many times in a row, over at
# least this long, is one it forgot: the job fails and its hold is released.
JOB_NOT_FOUND_POLLS = env_int("JOB_NOT_FOUND_POLLS", 3, minimum=1)
JOB_NOT_FOUND_SECONDS = env_int("JOB_NOT_FOUND_SECONDS", 120, minimum=0)
# Polling (jobs/pipeline/schedule.py): status requests come at most L seconds
# apart where a job is likely to finish, so all but the slowest few percent
# are seen within L. L leaves a card showing the video no later at p95 than a
# plain poller asking every POLL_MATCH_SECONDS would see the job done, once
# the studio has measured its own archive time per provider, model and
# resolution (schedule.lag_to_match); until then, and always with
# POLL_MATCH_SECONDS=0, L is POLL_LAG_TARGET_SECONDS.
POLL_LAG_TARGET_SECONDS = env_float("POLL_LAG_TARGET_SECONDS", 3, minimum=1)
POLL_MATCH_SECONDS = env_float("POLL_MATCH_SECONDS", 5, minimum=0)
# Finished jobs per provider, model and resolution that render times are learnt
# from (newer ones weigh more: a quarter of this is their half-life).
POLL_LEARN_JOBS = env_int("POLL_LEARN_JOBS", 40, minimum=4)
# How long one run of the poll loop lasts before the schedule starts the next.
POLL_LOOP_SECONDS = env_int("POLL_LOOP_SECONDS", 50, minimum=1)
# Signed input links for providers stop working after this (and when the job ends).
INPUT_LINK_MAX_AGE = env_int("INPUT_LINK_MAX_AGE", 3 * 24 * 3600, minimum=60)
# URLs fetched on someone else's word (providers' outputs) and provider account
# base URLs may be on loopback only with this on: the sandbox and local
# development (the run command sets it when it starts the sandbox). Other
# private ranges are never allowed; see jobs/fetch.py.
FETCH_ALLOW_LOOPBACK = env_bool("FETCH_ALLOW_LOOPBACK", False)
# Webhooks are offered to providers when PUBLIC_BASE_URL is https, or with this
# on for local use (the sandbox calls plain http on localhost).
WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", False)
# REST API: requests one key may send in a minute (429 with Retry-After past it),
# and the life of the signed output links its job answers carry.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
API_OUTPUT_LINK_MAX_AGE = env_int("API_OUTPUT_LINK_MAX_AGE", 24 * 3600, minimum=60)
# Key limits: staff defaults copied into every new key (members may narrow
# them on their own keys; staff set any key in the admin). 0 or empty: none.
API_KEY_DEFAULT_EXPIRY_DAYS = env_int("API_KEY_DEFAULT_EXPIRY_DAYS", 0, minimum=0)
API_KEY_DEFAULT_BUDGET = env_int("API_KEY_DEFAULT_BUDGET", 0, minimum=0)
API_KEY_DEFAULT_BUDGET_PERIOD = env_str("API_KEY_DEFAULT_BUDGET_PERIOD", "month").lower()
API_KEY_DEFAULT_MODES = env_list("API_KEY_DEFAULT_MODES", [])
API_KEY_DEFAULT_PROVIDERS = env_list("API_KEY_DEFAULT_PROVIDERS", [])
# Jobs one key may have running at once when the key names no number.
API_KEY_MAX_IN_FLIGHT = env_int("API_KEY_MAX_IN_FLIGHT", 20, minimum=1)
# A finished job's input files are kept this many days; 0 keeps them for good.
INPUT_RETENTION_DAYS = env_int("INPUT_RETENTION_DAYS", 30, minimum=0)
# Archived outputs are kept this many days; 0 keeps them for good.
OUTPUT_RETENTION_DAYS = env_int("OUTPUT_RETENTION_DAYS", 0, minimum=0)

# --- Logging ------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "jobs": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django_q": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # django-q2 logs as "django-q": without this its INFO lines (a node
        # running, tasks processed, workers reincarnated) fell to the root's WARNING.
        "django-q": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
