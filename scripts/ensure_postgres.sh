#!/usr/bin/env bash
# Print a PostgreSQL URL that answers: $DATABASE_URL if set and alive, else the local server
# (127.0.0.1:5432, trust auth as on the CI machines), else a local server started — and
# installed from Debian if absent — with a superuser role for the test suite.
source "$(dirname "$0")/common.sh"

if [ -n "${DATABASE_URL:-}" ] && [[ "$DATABASE_URL" == postgres* ]] && probe postgres "$DATABASE_URL"; then
  echo "$DATABASE_URL"; exit 0
fi
trust_url="postgres://postgres@127.0.0.1:5432/hematovision"
if probe postgres "$trust_url"; then echo "$trust_url"; exit 0; fi

apt_install_for pg_ctlcluster postgresql
say "Starting the local PostgreSQL cluster"
for cluster in $(pg_lsclusters -h | awk '{print $1"/"$2}'); do
  pg_ctlcluster "${cluster%/*}" "${cluster#*/}" start >/dev/null 2>&1 || true
done
role_url="postgres://hematovision:hematovision@127.0.0.1:5432/hematovision"
for _ in $(seq 1 50); do su postgres -c "psql -qtAc 'SELECT 1'" >/dev/null 2>&1 && break; sleep 0.2; done
# A superuser because the audit tamper test disables triggers the way an attacker with
# superuser rights would.
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'hematovision'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE hematovision LOGIN SUPERUSER PASSWORD 'hematovision'\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname = 'hematovision'\"" | grep -q 1 \
  || su postgres -c "createdb -O hematovision hematovision"
probe postgres "$role_url" || { say "PostgreSQL is not reachable at 127.0.0.1:5432"; exit 1; }
echo "$role_url"
