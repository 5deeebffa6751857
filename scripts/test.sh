#!/usr/bin/env bash
# The test command: set up ./.venv with the dev extras (and Debian's chromium for the browser
# tests, with apt-get, when missing), lint the whole tree, run every test,
# then deploy the stack into a local AWS emulator and drive it (scripts/deploy_emulator.sh,
# ≈ 3 min; needs 127.0.0.1:5000 free; LABELLOOP_SKIP_EMULATOR=1 skips it).
# Extra arguments go to pytest (e.g. scripts/test.sh -k encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# The console's browser tests drive Debian's Chromium (test tools cannot download a browser).
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests (apt-get) …"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium > /dev/null
fi
echo "ruff check ."
.venv/bin/ruff check .
# Two workers (the CI machine has two cores), whole modules per worker (module fixtures
# are built once); LABELLOOP_TEST_WORKERS=0 runs everything in this process.
.venv/bin/python -m pytest -n "${LABELLOOP_TEST_WORKERS:-2}" --dist loadfile "$@"
if [ "${LABELLOOP_SKIP_EMULATOR:-}" != 1 ]; then
  scripts/deploy_emulator.sh
fi
