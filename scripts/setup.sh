#!/usr/bin/env bash
# Create ./.venv (if missing) and install labelloop from pyproject.toml with the given extras.
# Re-running is cheap: pip skips what is already satisfied.
#   scripts/setup.sh            -> runtime + training (what the run command needs)
#   scripts/setup.sh dev        -> everything the tests need
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-train,build}"
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)' || {
  echo "labelloop needs Python 3.11 or 3.12 (found $("$py" --version 2>&1)); set PYTHON=…" >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$py" --version)"
  "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
fi
stamp=".venv/.installed-$extras-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing labelloop[$extras] into .venv …"
  .venv/bin/python -m pip install --quiet --progress-bar off -e ".[$extras]" 2>&1 \
    | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import labelloop' && touch "$stamp"
fi
