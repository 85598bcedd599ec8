"""Settings for the test suite: PostgreSQL (as in production), fast hashing, isolated Redis DB."""

import os

from hematovision_site.settings.base import *  # noqa: F403
from hematovision_site.settings.environment import env

DATABASE_URL = env.text("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hematovision")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}  # noqa: F405
# One test database per run: several checkouts may test against the same server at once.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
# A Redis database of its own, so tests never share queues with a running `make run`.
REDIS_URL = env.text("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
HEMATOVISION_DEMO_USERS_ALLOWED = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# Static files straight from the finders: the suite never runs collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# No worker runs in most tests: /ready/ must not wait long for one to answer its ping.
HEMATOVISION_READINESS_TIMEOUT_SECONDS = 0.2
