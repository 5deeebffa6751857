#!/usr/bin/env bash
# The main job on the local default: set up ./.venv, build the encoders if needed, start the local
# stack (moto + the real handlers) on port 5000, create/train/invoke the example function from
# scripts/data through the public API, then the example image function (MNIST digits from a pip
# package, scripts/example_images.py), and keep serving with the URL and credentials shown.
# Extra arguments go to `labelloop local` (e.g. --port 5001 --data-dir /tmp/ll).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh train,build,local
.venv/bin/python scripts/build_encoder.py --encoder all
.venv/bin/python scripts/example_images.py .cache/example-digits
exec .venv/bin/labelloop local --example --example-images .cache/example-digits "$@"
