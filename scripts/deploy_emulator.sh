#!/usr/bin/env bash
# Deployment check without AWS: deploy the synthesized stack with the unmodified CDK CLI
# (`cdk bootstrap` + `cdk deploy`) into ministack, a local AWS emulator that runs Python Lambdas
# without Docker, then drive the deployed API with the official `nyckel` SDK (create, train,
# invoke) and run batches through the deployed queue. Stops the emulator in all cases.
#
#   scripts/deploy_emulator.sh            (scripts/test.sh runs it last)
#
# ministack pins botocore exactly, so it gets its own virtualenv (.cache/ministack-venv). It runs
# every Python handler with its own interpreter, whatever the declared runtime: the layers are
# built for that interpreter's version and the stack is deployed with
# settings {"lambda_python": <that version>, "fargate_training": false}. It listens on
# 127.0.0.1:5000 (the SDK only pages through URLs containing ":5000"); the port must be free.
# The steps and their timings: scripts/deploy_emulator.py.
set -euo pipefail
cd "$(dirname "$0")/.."
MINISTACK_VERSION=1.5.33
BOTO3_VERSION=1.43.106  # the botocore that ministack pins; handlers import boto3 from its venv
venv=.cache/ministack-venv
py="${PYTHON:-python3}"
started=$(date +%s)

step() { echo "== deploy-emulator: $* ($(( $(date +%s) - started )) s)"; }

scripts/setup.sh dev

stamp="$venv/.installed-ministack-$MINISTACK_VERSION-boto3-$BOTO3_VERSION"
if [ ! -f "$stamp" ]; then
  step "installing ministack==$MINISTACK_VERSION into $venv"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --progress-bar off --disable-pip-version-check \
    "ministack==$MINISTACK_VERSION" "boto3==$BOTO3_VERSION" 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/python" -c 'import ministack, boto3' && touch "$stamp"
fi
lambda_python=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

step "building the encoders and the layers for Python $lambda_python (ministack's interpreter)"
.venv/bin/python scripts/build_encoder.py --encoder all
.venv/bin/python scripts/build_layers.py --python "$lambda_python" > .cache/emulator-layers.log 2>&1 || {
  cat .cache/emulator-layers.log >&2
  echo "deploy-emulator: FAILED: scripts/build_layers.py --python $lambda_python" >&2
  exit 1
}
tail -n 1 .cache/emulator-layers.log

step "layers ready"
exec .venv/bin/python scripts/deploy_emulator.py --ministack "$venv/bin/ministack" \
  --lambda-python "$lambda_python" "$@"
