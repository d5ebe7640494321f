#!/usr/bin/env bash
# The README's run command lands here after `make build`: start the
# pipeline on this host and show live events in the terminal.
#
# The supervisor (`kloudlens`) creates the rings, starts every stage that
# is built with the right identity, and shows live intents (or enriched
# events while kl-intentd is not built). Ctrl-C stops everything in order.
set -euo pipefail
BUILD=${1:-build}
[[ $(id -u) -eq 0 ]] || { echo "run.sh: live eBPF capture needs root (sudo make run)" >&2; exit 1; }

if [[ -x $BUILD/supervisor/kloudlens ]]; then
  exec "$BUILD/supervisor/kloudlens" --show intents
fi

echo "run.sh: $BUILD/supervisor/kloudlens is not built" >&2
exit 1
