"""Real parts for the integration tier: PostgreSQL rows committed for a `celery worker`
subprocess that talks to the test's Redis database and loads the real model."""

from tests.worker_fixtures import make_worker, serving_model, worker_queue  # noqa: F401  (fixtures)
