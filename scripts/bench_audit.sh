#!/usr/bin/env bash
# Audit verification at a year's size (docs/performance.md): a fresh PostgreSQL database of its
# own, N seeded audit events (default 2,000,000), then `verify_audit --full`, 10,000 more events
# and an incremental `verify_audit`, each step with its load average, time and peak memory.
#
#   scripts/bench_audit.sh                      # 2,000,000 events
#   AUDIT_EVENTS=1000000 scripts/bench_audit.sh
#
# AUDIT_DATABASE (hematovision_audit_bench) is dropped and created again each run, and dropped at
# the end unless AUDIT_KEEP_DATABASE=1.
source "$(dirname "$0")/common.sh"
cd "$PROJECT_ROOT"

events="${AUDIT_EVENTS:-2000000}"
database="${AUDIT_DATABASE:-hematovision_audit_bench}"
server_url="$(scripts/ensure_postgres.sh)"
export DATABASE_URL="${server_url%/*}/$database" DJANGO_SETTINGS_MODULE=hematovision_site.settings.base

database_admin() {  # $1: SQL run on the server's maintenance database
  "$PYTHON" - "$server_url" "$1" <<'PY'
import sys, psycopg
url = sys.argv[1].rsplit("/", 1)[0] + "/postgres"
with psycopg.connect(url, autocommit=True) as connection:
    connection.execute(sys.argv[2])
PY
}

step() {  # $1: what, then the manage.py command line
  say "$1 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  shift
  /usr/bin/time -f "  %e s wall, peak memory %M KiB" "$PYTHON" -u manage.py "$@"
}

stop() {
  trap - INT TERM EXIT
  if [ "${AUDIT_KEEP_DATABASE:-0}" != 1 ]; then database_admin "DROP DATABASE IF EXISTS $database WITH (FORCE)"; fi
}
trap stop INT TERM EXIT

database_admin "DROP DATABASE IF EXISTS $database WITH (FORCE)"
database_admin "CREATE DATABASE $database"
"$PYTHON" manage.py migrate --no-input -v 0
step "Seeding $events audit events" seed_audit_chain --events "$events" --batch-size 50000
step "Verifying all of them" verify_audit --full --progress-every 250000
step "Seeding 10,000 more" seed_audit_chain --events 10000 --batch-size 10000
step "Verifying from the checkpoint" verify_audit
step "Verifying from the checkpoint, nothing new" verify_audit
say "Done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
