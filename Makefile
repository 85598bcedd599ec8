# Two commands: `make run` (the app at http://127.0.0.1:8000) and `make test` (the whole suite).
.PHONY: run test install lint

install:
	@scripts/bootstrap.sh

run: install
	@scripts/run.sh

test: install
	@scripts/test.sh

lint: install
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .
