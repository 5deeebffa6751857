#!/usr/bin/env bash
# The test command: set up ./.venv with the dev extras, lint the whole tree, run every test,
# then deploy the stack into a local AWS emulator and drive it (scripts/deploy_emulator.sh,
# ≈ 3 min; needs 127.0.0.1:5000 free; LABELLOOP_SKIP_EMULATOR=1 skips it).
# Extra arguments go to pytest (e.g. scripts/test.sh -k encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
echo "ruff check ."
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
if [ "${LABELLOOP_SKIP_EMULATOR:-}" != 1 ]; then
  scripts/deploy_emulator.sh
fi
