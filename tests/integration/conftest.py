"""Real parts for the integration tier: PostgreSQL rows committed for a `celery worker`
subprocess that talks to the test's Redis database and loads the real model (and a worker of
the training queue for adaptation runs)."""

from tests.worker_fixtures import (  # noqa: F401  (fixtures)
    make_training_worker,
    make_worker,
    serving_model,
    training_queue,
    worker_queue,
)
