#!/usr/bin/env bash
# Run a Node check (check.js SUBCOMMAND, or kvalidate.js) with the ajv +
# js-yaml install of tests/contractc/node (scripts/node-deps.sh). Without
# node or that install: skip (77), or fail when KLOUDLENS_REQUIRE_LIVE=1.
set -uo pipefail
root=${KLOUDLENS_SOURCE_ROOT:?}
mods=$root/tests/contractc/node/node_modules
if ! command -v node >/dev/null || [[ ! -d $mods/ajv || ! -d $mods/js-yaml || ! -d $mods/ajv-formats ]]; then
  echo "node or $mods (ajv, ajv-formats, js-yaml) missing: run scripts/node-deps.sh"
  [[ ${KLOUDLENS_REQUIRE_LIVE:-0} == 1 ]] && exit 1
  exit 77
fi
export NODE_PATH=$mods
if [[ $1 == kvalidate ]]; then
  shift
  exec node "$root/tests/contractc/node/kvalidate.js" --strict --schemas "$root/tests/schemas" "$@"
fi
exec node "$(dirname "$0")/check.js" "$1" "$root" "${@:2}"
