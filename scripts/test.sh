#!/usr/bin/env bash
# The test command: set up ./.venv with the dev extras, lint the whole tree, run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
echo "ruff check ."
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
