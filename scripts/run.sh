#!/usr/bin/env bash
# Migrate, create demo users, make sure Redis answers, then run the Celery workers (inference on
# the default queue; adaptation on the training queue, one run at a time) and gunicorn (static
# files by whitenoise) at http://127.0.0.1:8000 until Ctrl-C.
source "$(dirname "$0")/common.sh"
cd "$PROJECT_ROOT"

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-hematovision_site.settings.base}"
REDIS_URL="$(scripts/ensure_redis.sh)"
export REDIS_URL
mkdir -p var
manage() { "$PYTHON" manage.py "$@"; }

say "Migrating the database"
manage migrate --no-input -v 0
manage collectstatic --no-input -v 0
manage demo_users
manage register_default_model || say "No default model registered yet: classification waits for one."

pids=()
stop() {
  trap - INT TERM EXIT
  say "Stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # A redis-server this project started (scripts/ensure_redis.sh) goes too; a system one stays.
  if [ -f var/redis/redis.pid ]; then
    kill -TERM "$(cat var/redis/redis.pid)" 2>/dev/null || true
    rm -f var/redis/redis.pid
  fi
}
trap stop INT TERM EXIT

say "Starting a Celery worker (log: var/celery.log)"
"$VENV/bin/celery" -A hematovision_site worker --loglevel INFO --concurrency "${CELERY_CONCURRENCY:-2}" \
  -Q celery -n inference@%h >var/celery.log 2>&1 &
pids+=($!)
# Adapting the model to the lab trains for minutes: a worker of its own, one run at a time, so
# inference never waits behind it (docs/adaptation.md, "In the app").
say "Starting the training worker (log: var/celery-training.log)"
"$VENV/bin/celery" -A hematovision_site worker --loglevel INFO --concurrency 1 \
  -Q "${HEMATOVISION_TRAINING_QUEUE:-training}" -n training@%h >var/celery-training.log 2>&1 &
pids+=($!)

say "HematoVision at http://127.0.0.1:8000 (Ctrl-C stops everything)"
# Timeouts, workers and logs: scripts/gunicorn.conf.py (set deliberately, see there).
"$VENV/bin/gunicorn" hematovision_site.wsgi:application --config scripts/gunicorn.conf.py &
pids+=($!)
# Readiness (docs/security-hardening.md): database, broker, a worker answering, the model verified.
if probe ready http://127.0.0.1:8000/ready/ "${HEMATOVISION_READY_WAIT_SECONDS:-120}"; then
  say "Ready: database, broker, worker and model all answer (http://127.0.0.1:8000/ready/)"
else
  say "Running, but not ready: see above and http://127.0.0.1:8000/ready/"
fi
wait -n "${pids[@]}"
