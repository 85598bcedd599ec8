"""gunicorn settings of `make run` (scripts/run.sh) and the deployment image: chosen, not defaults.

The slowest request is an upload, and one upload is bounded (HEMATOVISION_UPLOAD_REQUEST_MAX_PIXELS
and _FILES): the issue-11 worst case, 300 images of 5000×4999 px in one zip, answers in a few
seconds (tests/proof/security/test_upload_budget.py). A request that still runs after ``timeout``
is a bug, and the worker is killed and replaced rather than left holding its slot.
"""

import os

bind = os.environ.get("HEMATOVISION_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Seconds a worker may spend on one request before the arbiter kills it (gunicorn's default, 30,
# is an accident of history; ours leaves the bounded upload room on a slow, shared machine).
timeout = 60
# Seconds a worker has to finish its request after a restart or Ctrl-C.
graceful_timeout = 30
# Idle keep-alive behind a proxy; short, so idle connections do not hold sync workers.
keepalive = 5
accesslog = "-"
