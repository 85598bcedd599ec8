"""Settings shared by every environment; development defaults for the quick start.

Every value that comes from the environment is read here (or re-read strictly in
``production``) through ``environment.env``.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url

from hematovision_site.settings.environment import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

SECRET_KEY = env.text("SECRET_KEY", "django-insecure-development-only-never-use-in-production")
DEBUG = env.flag("DEBUG", False)
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS", [])

# Demo accounts (make run) are refused wherever this is False; production forces it off.
HEMATOVISION_DEMO_USERS_ALLOWED = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    "accounts",
    "audit",
    "cases",
    "classifier",
    "review",
    "devtools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.NoStoreMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.ClientAddressMiddleware",
    "accounts.middleware.IdleLogoutMiddleware",
    # Axes must come last so it sees the outcome of every authentication attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hematovision_site.urls"
WSGI_APPLICATION = "hematovision_site.wsgi.application"

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
                "accounts.context_processors.session_idle",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------
DATABASE_URL = env.text("DATABASE_URL", f"sqlite:///{VAR_DIR / 'hematovision.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two audit writers cannot both read the same
    # chain head before either inserts.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Users, sessions, login ----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.authentication.DemoAccountRefusalBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Logged off after this many seconds without a user action (background polling does not count).
HEMATOVISION_SESSION_IDLE_SECONDS = env.integer("HEMATOVISION_SESSION_IDLE_SECONDS", 15 * 60)
# Hard cap on a session's life, whatever the activity.
SESSION_COOKIE_AGE = env.integer("HEMATOVISION_SESSION_MAX_AGE_SECONDS", 12 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

AXES_FAILURE_LIMIT = env.integer("HEMATOVISION_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env.integer("HEMATOVISION_LOGIN_COOLOFF_MINUTES", 15))
# Locks a username from the address that keeps failing; a stranger elsewhere cannot lock a
# colleague out of their account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# ...and an address whose failures over all usernames reach this limit within the cool-off is
# locked too: a password spray over many usernames (accounts/lockout.py).
AXES_HANDLER = "accounts.lockout.AddressLimitHandler"
HEMATOVISION_LOGIN_ADDRESS_FAILURE_LIMIT = env.integer("HEMATOVISION_LOGIN_ADDRESS_FAILURE_LIMIT", 20)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# 429 in JSON for the API, the template for pages.
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False

# --- Internationalisation --------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.text("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Cell images (no patient identifiers in them) may stay this long in the user's own browser cache.
HEMATOVISION_CELL_IMAGE_CACHE_SECONDS = 300

# --- Static and media files -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.text("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.text("MEDIA_ROOT", str(VAR_DIR / "media")))
# Media has no public URL: cell images are streamed by a view that checks access first.

HEMATOVISION_FILE_STORAGE = env.text("HEMATOVISION_FILE_STORAGE", "local")
if HEMATOVISION_FILE_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.text("AWS_STORAGE_BUCKET_NAME", required=True),
            "endpoint_url": env.text("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env.text("AWS_S3_REGION_NAME", "") or None,
            "access_key": env.text("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": env.text("AWS_SECRET_ACCESS_KEY", "") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
elif HEMATOVISION_FILE_STORAGE == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("HEMATOVISION_FILE_STORAGE must be 'local' or 's3'.")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Uploads ------------------------------------------------------------------------------------------
HEMATOVISION_UPLOAD_MAX_FILE_BYTES = env.integer("HEMATOVISION_UPLOAD_MAX_FILE_BYTES", 20 * 1024 * 1024)
HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES = env.integer(
    "HEMATOVISION_UPLOAD_MAX_REQUEST_BYTES", 256 * 1024 * 1024
)
HEMATOVISION_UPLOAD_MAX_PIXELS = env.integer("HEMATOVISION_UPLOAD_MAX_PIXELS", 25_000_000)
# No white blood cell image is smaller than this on a side, or more elongated than this.
HEMATOVISION_UPLOAD_MIN_SIDE_PIXELS = env.integer("HEMATOVISION_UPLOAD_MIN_SIDE_PIXELS", 16)
HEMATOVISION_UPLOAD_MAX_ASPECT_RATIO = float(env.integer("HEMATOVISION_UPLOAD_MAX_ASPECT_RATIO", 4))
# One request checks at most this many files (archive members included) and decodes at most this
# many pixels (about 1.5 s of PNG decoding on one core): far inside gunicorn's timeout
# (scripts/gunicorn.conf.py). Files beyond are answered "not checked", one by one.
HEMATOVISION_UPLOAD_REQUEST_MAX_FILES = env.integer("HEMATOVISION_UPLOAD_REQUEST_MAX_FILES", 1000)
HEMATOVISION_UPLOAD_REQUEST_MAX_PIXELS = env.integer("HEMATOVISION_UPLOAD_REQUEST_MAX_PIXELS", 250_000_000)
HEMATOVISION_ARCHIVE_MAX_MEMBERS = env.integer("HEMATOVISION_ARCHIVE_MAX_MEMBERS", 1000)
HEMATOVISION_ARCHIVE_MAX_TOTAL_BYTES = env.integer("HEMATOVISION_ARCHIVE_MAX_TOTAL_BYTES", 256 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = env.integer("HEMATOVISION_UPLOAD_MAX_FILES", 1000)
FILE_UPLOAD_PERMISSIONS = 0o640

# --- Data and model locations -----------------------------------------------------------------------
HEMATOVISION_DATA_DIR = Path(env.text("HEMATOVISION_DATA_DIR", str(BASE_DIR.parent / "shared" / "data")))
HEMATOVISION_MODELS_ROOT = Path(env.text("HEMATOVISION_MODELS_ROOT", str(BASE_DIR / "ml" / "models")))

# --- Pathologist review and result exports ----------------------------------------------------------------
# A class whose verified percentage moved more than this many percentage points since the
# patient's previous signed result is delta-flagged (earlier results, sign page, report).
HEMATOVISION_DELTA_POINTS = env.integer("HEMATOVISION_DELTA_POINTS", 10)
if HEMATOVISION_DELTA_POINTS < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("HEMATOVISION_DELTA_POINTS must be at least 1 (percentage points).")
# The pathologist's worklist: how many slides the home page shows before its link to the rest.
HEMATOVISION_WORKLIST_HOME_SIZE = env.integer("HEMATOVISION_WORKLIST_HOME_SIZE", 5)
# The differential's reference intervals are set per class on the class list page (/review/classes/).
# Identifier systems of the lab's records in FHIR exports.
HEMATOVISION_FHIR_MRN_SYSTEM = env.text("HEMATOVISION_FHIR_MRN_SYSTEM", "urn:hematovision:mrn")
HEMATOVISION_FHIR_ACCESSION_SYSTEM = env.text(
    "HEMATOVISION_FHIR_ACCESSION_SYSTEM", "urn:hematovision:accession"
)
HEMATOVISION_FHIR_USER_SYSTEM = env.text("HEMATOVISION_FHIR_USER_SYSTEM", "urn:hematovision:user")

# --- Celery and Redis -----------------------------------------------------------------------------------
# Mail (consult notifications): the console under the quick start; SMTP settings for a real server.
EMAIL_BACKEND = env.text("HEMATOVISION_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.text("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25)
EMAIL_HOST_USER = env.text("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.text("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.flag("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env.text("DEFAULT_FROM_EMAIL", "hematovision@localhost")

REDIS_URL = env.text("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = timedelta(hours=1)
# A clinical queue must not lose work when a worker dies: acknowledge after the task finished,
# requeue on worker loss, and take one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker blip does not cancel a running job (Celery 6 will default to cancelling): it finishes
# its cells, and any redelivery of its message is a no-op (outcomes are written idempotently).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.integer("HEMATOVISION_CELERY_VISIBILITY_TIMEOUT_SECONDS", 60 * 60),
    # Every this many seconds a worker hands back messages of dead workers older than the
    # visibility timeout (kombu's default scans only every 100 s).
    "unacked_restore_interval": env.integer("HEMATOVISION_CELERY_RESTORE_INTERVAL_SECONDS", 10),
    "unacked_restore_throttle": 1,
}
# Cells classified (and stored) per batch; a batch takes about a second on one CPU core, far
# below the visibility timeout. A job a worker dies on this many times is failed, not retried.
HEMATOVISION_INFERENCE_BATCH_SIZE = env.integer("HEMATOVISION_INFERENCE_BATCH_SIZE", 32)
HEMATOVISION_INFERENCE_MAX_ATTEMPTS = env.integer("HEMATOVISION_INFERENCE_MAX_ATTEMPTS", 5)
# Work committed while the broker was unreachable has no message: workers sweep every INTERVAL
# seconds for work still queued STALE seconds after creation and send it again, each row at most
# once per RESEND seconds (so a long backlog is not re-sent at every sweep).
HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS = env.integer("HEMATOVISION_DISPATCH_SWEEP_INTERVAL_SECONDS", 15)
HEMATOVISION_DISPATCH_STALE_SECONDS = env.integer("HEMATOVISION_DISPATCH_STALE_SECONDS", 120)
HEMATOVISION_DISPATCH_RESEND_SECONDS = env.integer("HEMATOVISION_DISPATCH_RESEND_SECONDS", 30 * 60)
# A running job's worker writes a heartbeat every HEARTBEAT seconds (a thread, so a slow model
# load or batch beats too). After three missed beats (SILENT) the job lost its worker and the next
# sweep sends it again: a killed worker's job resumes within SILENT + SWEEP_INTERVAL (45 s by
# default), and a live job, which beats, is never taken over.
HEMATOVISION_JOB_HEARTBEAT_SECONDS = env.integer("HEMATOVISION_JOB_HEARTBEAT_SECONDS", 10)
HEMATOVISION_JOB_SILENT_SECONDS = env.integer(
    "HEMATOVISION_JOB_SILENT_SECONDS", 3 * HEMATOVISION_JOB_HEARTBEAT_SECONDS
)
if HEMATOVISION_JOB_SILENT_SECONDS < 2 * HEMATOVISION_JOB_HEARTBEAT_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "HEMATOVISION_JOB_SILENT_SECONDS must be at least twice HEMATOVISION_JOB_HEARTBEAT_SECONDS, "
        "or the sweep takes over jobs whose worker is alive."
    )

# --- Adaptation to the lab (docs/adaptation.md, "In the app") ----------------------------------------------
# Training runs on a queue of its own, consumed by a worker of concurrency 1 (scripts/run.sh), so
# it never starves inference. Adapted models are written under HEMATOVISION_MODELS_ROOT/adapted/
# (ignored by git); the lab's cells are copied for the run under the work root and deleted after.
HEMATOVISION_TRAINING_QUEUE = env.text("HEMATOVISION_TRAINING_QUEUE", "training")
CELERY_TASK_ROUTES = {"classifier.adaptation_run": {"queue": HEMATOVISION_TRAINING_QUEUE}}
HEMATOVISION_ADAPTATION_WORK_ROOT = Path(
    env.text("HEMATOVISION_ADAPTATION_WORK_ROOT", str(VAR_DIR / "adaptation"))
)
# ml.adapt.AdaptConfig fields to override, as a JSON object (e.g. '{"epochs": 2}'); empty: ml's
# defaults. Field names are checked when a run starts (settings do not import ml).
HEMATOVISION_ADAPTATION_OPTIONS = env.json_object("HEMATOVISION_ADAPTATION_OPTIONS")

# A running adaptation whose worker wrote no heartbeat this long is marked failed by the sweep.
# More generous than for inference jobs: a training step on a loaded 2-core machine must not
# pass for a dead worker (a run is never resumed, so a false verdict would cost the whole run).
HEMATOVISION_ADAPTATION_SILENT_SECONDS = env.integer(
    "HEMATOVISION_ADAPTATION_SILENT_SECONDS", max(120, HEMATOVISION_JOB_SILENT_SECONDS)
)

# /ready/ waits at most this long for the broker and for a worker's answer to a ping.
HEMATOVISION_READINESS_TIMEOUT_SECONDS = env.integer("HEMATOVISION_READINESS_TIMEOUT_SECONDS", 2)

# --- REST API ----------------------------------------------------------------------------------------
# An API token works this many hours after it was issued (a shift and a half by default).
HEMATOVISION_API_TOKEN_HOURS = env.integer("HEMATOVISION_API_TOKEN_HOURS", 12)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an unauthenticated API call gets 401 with a WWW-Authenticate header.
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.api.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HematoVision API",
    "DESCRIPTION": "Patients, slides, cell images, audit events and users of a hematology lab.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"; each state machine gets a schema enum named after it.
    "ENUM_NAME_OVERRIDES": {
        "SlideStatusEnum": "cases.models.SlideStatus",
        "InferenceJobStatusEnum": "classifier.models.InferenceJobStatus",
        "QuickClassificationStatusEnum": "classifier.models.QuickClassificationStatus",
        "ConsultStatusEnum": "review.consult_models.ConsultStatus",
        "LabelEnum": "classifier.models.CellClass",
        "ProficiencyAnswerEnum": "review.teaching_api.MISSED_ANSWER_CHOICES",
    },
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.error_responses_document",
    ],
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
