#!/usr/bin/env bash
# The load test in one command: a fresh PostgreSQL database of its own with 10,000 seeded cells,
# gunicorn on production settings (plain HTTP on 127.0.0.1) and a Celery worker with the default
# model, then Locust headless: 20 users for 10 minutes. Prints failures, server errors (5xx),
# p95 per request and requests/s; everything lands in var/load/<time>/.
#
#   scripts/load.sh                          # 20 users, 10 minutes
#   LOAD_DURATION=1m LOAD_USERS=5 scripts/load.sh
#
# Other knobs: LOAD_SPAWN_RATE (users/s, 2), LOAD_PORT (8100), LOAD_CELLS (10000),
# LOAD_WEB_WORKERS (3), LOAD_DATABASE (hematovision_load, dropped and created again each run),
# LOAD_KEEP_DATABASE=1 keeps it afterwards.
source "$(dirname "$0")/common.sh"
cd "$PROJECT_ROOT"
scripts/bootstrap.sh

users="${LOAD_USERS:-20}"
duration="${LOAD_DURATION:-10m}"
port="${LOAD_PORT:-8100}"
database="${LOAD_DATABASE:-hematovision_load}"
run_dir="var/load/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run_dir/media"

server_url="$(scripts/ensure_postgres.sh)"
redis_url="$(scripts/ensure_redis.sh)"
export DJANGO_SETTINGS_MODULE=hematovision_site.settings.loadtest
export DATABASE_URL="${server_url%/*}/$database"
# A Redis database of its own: `make run` uses 0 and the tests 14.
export REDIS_URL="${redis_url%/*}/13"
export SECRET_KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(50))')"
export LOAD_PASSWORD="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')"
export ALLOWED_HOSTS=127.0.0.1,localhost MEDIA_ROOT="$PROJECT_ROOT/$run_dir/media" LOG_LEVEL=WARNING

database_admin() {  # $1: SQL run on the server's maintenance database
  "$PYTHON" - "$server_url" "$1" <<'PY'
import sys, psycopg
url = sys.argv[1].rsplit("/", 1)[0] + "/postgres"
with psycopg.connect(url, autocommit=True) as connection:
    connection.execute(sys.argv[2])
PY
}

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${LOAD_KEEP_DATABASE:-0}" != 1 ]; then database_admin "DROP DATABASE IF EXISTS $database WITH (FORCE)"; fi
  "$PYTHON" -c 'import redis, os; redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()' 2>/dev/null || true
}
trap stop INT TERM EXIT

say "Creating database $database, migrating, seeding ${LOAD_CELLS:-10000} cells"
database_admin "DROP DATABASE IF EXISTS $database WITH (FORCE)"
database_admin "CREATE DATABASE $database"
"$PYTHON" manage.py migrate --no-input -v 0
"$PYTHON" manage.py collectstatic --no-input -v 0
"$PYTHON" manage.py register_default_model
"$PYTHON" manage.py seed_scale --cells "${LOAD_CELLS:-10000}" --password "$LOAD_PASSWORD"

say "Starting a Celery worker and gunicorn on 127.0.0.1:$port (logs in $run_dir)"
"$VENV/bin/celery" -A hematovision_site worker --loglevel WARNING --concurrency 1 >"$run_dir/celery.log" 2>&1 &
pids+=($!)
"$VENV/bin/gunicorn" hematovision_site.wsgi:application --bind "127.0.0.1:$port" \
  --workers "${LOAD_WEB_WORKERS:-3}" --access-logfile "$run_dir/access.log" --error-logfile "$run_dir/gunicorn.log" &
pids+=($!)
for _ in $(seq 1 100); do
  "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health/', timeout=2)" 2>/dev/null && break
  sleep 0.3
done

say "Locust: $users users for $duration against http://127.0.0.1:$port (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
"$VENV/bin/locust" -f devtools/loadtest/locustfile.py --headless --users "$users" --spawn-rate "${LOAD_SPAWN_RATE:-2}" \
  --run-time "$duration" --host "http://127.0.0.1:$port" --csv "$run_dir/locust" --html "$run_dir/report.html" \
  --only-summary --exit-code-on-error 0 >"$run_dir/locust.log" 2>&1 || true
say "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
# The uploads' classification jobs, as the worker left them.
"$PYTHON" manage.py shell -v 0 -c "
from django.db.models import Count
from classifier.models import InferenceJob
jobs = InferenceJob.objects.filter(slide__accession_number__startswith='LT-')
print('Inference jobs of the slides uploaded during the run:', dict(jobs.values_list('status').annotate(n=Count('id'))))
" | tee "$run_dir/jobs.txt"
set +e
"$PYTHON" devtools/loadtest/summary.py "$run_dir" | tee "$run_dir/summary.txt"
status=${PIPESTATUS[0]}
set -e
say "Report: $run_dir/report.html, summary: $run_dir/summary.json"
exit "$status"
