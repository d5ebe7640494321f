#!/usr/bin/env bash
# Install the npm packages contractc's tests use to validate generated
# Kubernetes objects (ajv + ajv-formats + js-yaml) into
# tests/contractc/node/node_modules. Idempotent: does nothing when the
# installed tree already matches package.json (npm ci is used when a lock
# file exists so CI installs exactly the tested versions).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/tests/contractc/node
if ! command -v npm >/dev/null; then
  echo "node-deps.sh: npm not found; run scripts/deps.sh first" >&2
  exit 1
fi
stamp=$dir/node_modules/.kloudlens-stamp
hash_inputs() { { cat "$dir/package.json"; cat "$dir/package-lock.json" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
want=$(hash_inputs)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && [[ -d $dir/node_modules/ajv ]]; then
  exit 0
fi
cd "$dir"
if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
else
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
# Recompute: npm install may have just written the lock file.
hash_inputs > "$stamp"
