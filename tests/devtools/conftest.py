"""The pipeline benchmark starts a worker of its own; it needs the real model registered and a
queue of the test's own (shared with tests/integration)."""

from tests.worker_fixtures import serving_model, worker_queue  # noqa: F401  (fixtures)
