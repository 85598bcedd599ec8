# Shared helpers for the scripts in this folder (sourced, not run).
set -euo pipefail

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$PROJECT_ROOT/.venv"
PYTHON="$VENV/bin/python"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

apt_install() {
  say "Installing Debian packages: $*"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

# Install Debian packages only when a command they provide is missing.
apt_install_for() {
  local command_name="$1"; shift
  command -v "$command_name" >/dev/null 2>&1 || apt_install "$@"
}

probe() { "$PYTHON" "$PROJECT_ROOT/scripts/probe.py" "$@"; }
