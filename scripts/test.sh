#!/usr/bin/env bash
# Run the whole test suite on PostgreSQL and Redis. Extra arguments go to pytest.
source "$(dirname "$0")/common.sh"
cd "$PROJECT_ROOT"

# Browser tests drive Debian's Chromium through Playwright.
apt_install_for chromium chromium
DATABASE_URL="$(scripts/ensure_postgres.sh)"
redis_url="$(scripts/ensure_redis.sh)"
# Tests get a Redis database of their own unless the caller chose one.
if [ -n "${REDIS_URL:-}" ] && [ "$redis_url" = "$REDIS_URL" ]; then TEST_REDIS_URL="$REDIS_URL"
else TEST_REDIS_URL="${redis_url%/*}/14"; fi
export DATABASE_URL TEST_REDIS_URL DJANGO_SETTINGS_MODULE=hematovision_site.settings.test

# The architecture's import rules (pyproject.toml, docs/architecture.md) before any test.
say "Checking import contracts"
(cd "$PROJECT_ROOT" && "$VENV/bin/lint-imports" --no-cache) || { say "An import breaks the architecture's contracts."; exit 1; }

say "Testing on PostgreSQL at ${DATABASE_URL##*@} and Redis at ${TEST_REDIS_URL##*@}"
set +e
"$PYTHON" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then say "pytest collected no tests: that is a failure."; fi
exit "$status"
