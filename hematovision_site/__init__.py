"""Django project package: settings, URLs, WSGI entry point and the Celery app."""

from hematovision_site.celery import app as celery_app

__all__ = ("celery_app",)
