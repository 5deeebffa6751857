#!/usr/bin/env bash
# The main job on the local default: set up ./.venv, build the encoder if needed, train on the
# example function in scripts/data and print predictions. Extra arguments go to `labelloop demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh train,build
.venv/bin/python scripts/build_encoder.py
exec .venv/bin/labelloop demo "$@"
