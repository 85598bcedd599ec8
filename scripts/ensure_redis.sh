#!/usr/bin/env bash
# Print a Redis URL that answers: $REDIS_URL if set and alive, else a local redis-server
# (started, and installed from Debian if absent).
source "$(dirname "$0")/common.sh"

if [ -n "${REDIS_URL:-}" ] && probe redis "$REDIS_URL"; then
  echo "$REDIS_URL"; exit 0
fi
local_url="redis://127.0.0.1:6379/0"
if ! probe redis "$local_url"; then
  apt_install_for redis-server redis-server
  say "Starting redis-server on 127.0.0.1:6379"
  mkdir -p "$PROJECT_ROOT/var/redis"
  # The pid file tells `make run` that this server is ours to stop on Ctrl-C.
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --dir "$PROJECT_ROOT/var/redis" \
    --logfile "$PROJECT_ROOT/var/redis/redis.log" --pidfile "$PROJECT_ROOT/var/redis/redis.pid" >/dev/null
  for _ in $(seq 1 50); do probe redis "$local_url" && break; sleep 0.2; done
  probe redis "$local_url" || { say "redis-server did not start (see var/redis/redis.log)"; exit 1; }
fi
echo "$local_url"
