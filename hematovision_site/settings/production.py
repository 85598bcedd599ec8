"""Production settings: required variables have no defaults, and HTTPS is assumed."""

from hematovision_site.settings.base import *  # noqa: F403
from hematovision_site.settings.environment import env

SECRET_KEY = env.text("SECRET_KEY", required=True)
# Django only warns (security.W009) about a short or low-entropy key; production refuses to start.
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 characters with at least 5 different ones, and not a "
        "'django-insecure-' key; generate one: python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", required=True)
DATABASE_URL = env.text("DATABASE_URL", required=True)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}  # noqa: F405
REDIS_URL = env.text("REDIS_URL", required=True)
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL

DEBUG = False
HEMATOVISION_DEMO_USERS_ALLOWED = False
# Consult notifications go out by SMTP (EMAIL_HOST and friends) unless another backend is named.
EMAIL_BACKEND = env.text("HEMATOVISION_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")

SECURE_SSL_REDIRECT = env.flag("SECURE_SSL_REDIRECT", True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
