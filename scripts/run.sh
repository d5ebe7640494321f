#!/usr/bin/env bash
# The README's run command lands here after `make build`: start the
# pipeline on this host and show live events in the terminal.
#
# Until the supervisor (`kloudlens`) lands, this runs what exists: the
# collector writing the `raw` ring, with klrec following it. Ctrl-C stops
# everything.
set -euo pipefail
BUILD=${1:-build}
[[ $(id -u) -eq 0 ]] || { echo "run.sh: live eBPF capture needs root (sudo make run)" >&2; exit 1; }

if [[ -x $BUILD/kloudlens ]]; then
  exec "$BUILD/kloudlens" --show intents
fi

if [[ -x $BUILD/collector/kl-collector ]]; then
  "$BUILD/collector/kl-collector" &
  COLLECTOR=$!
  trap 'kill $COLLECTOR 2>/dev/null; wait $COLLECTOR 2>/dev/null' EXIT INT TERM
  for _ in $(seq 50); do [[ -e /dev/shm/kloudlens/raw ]] && break; sleep 0.1; done
  "$BUILD/klrec/klrec" print --ring raw --follow
  exit 0
fi

echo "run.sh: no pipeline stage is built yet (kl-collector is issue 3)" >&2
exit 1
