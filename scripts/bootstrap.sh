#!/usr/bin/env bash
# Create .venv and install requirements.txt; skipped when the installed set is current.
source "$(dirname "$0")/common.sh"
cd "$PROJECT_ROOT"

requirements_hash="$(sha256sum requirements.txt | cut -c1-16)"
stamp="$VENV/.requirements-$requirements_hash"
[ -f "$stamp" ] && [ -x "$PYTHON" ] && exit 0

if [ ! -x "$PYTHON" ]; then
  apt_install_for python3 python3
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  say "Creating $VENV"
  python3 -m venv "$VENV"
fi
say "Installing requirements (first run takes a few minutes)"
"$PYTHON" -m pip install --quiet --upgrade pip
"$PYTHON" -m pip install --quiet -r requirements.txt
rm -f "$VENV"/.requirements-*
touch "$stamp"
