#!/usr/bin/env bash
# Checks of deployments/ against the real binaries, when they are built in
# this build tree (a -Donly=deployments build has none of them):
#  1. kl-collector --probe --json, wrapped in a NodeCapabilities object,
#     validates against the CRD (the schema mirrors the real output);
#  2. kl-collector runs as the unprivileged kloudlens user with exactly the
#     ambient capabilities of kloudlens-collector.service (root, BPF needed),
#     attaches, and writes the raw ring;
#  3. the ConfigMap's config.yaml loads in the real parser (kloudlens --print-config);
#  4. contractc validate accepts deployments/examples/behaviorcontract.yaml.
# A check whose binary or privilege is missing is skipped; exit 77 if all
# were skipped. KLOUDLENS_REQUIRE_LIVE=1 turns every skip into a failure.
set -uo pipefail
root=${KLOUDLENS_SOURCE_ROOT:?} build=${KLOUDLENS_BUILD_ROOT:?}
here=$(dirname "$0")
export NODE_PATH=${NODE_PATH:-$root/tests/contractc/node/node_modules}
strict=${KLOUDLENS_REQUIRE_LIVE:-0}
fail=0 ran=0
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
skip() { echo "skip $1"; [[ $strict == 1 ]] && { echo "FAIL (KLOUDLENS_REQUIRE_LIVE=1): $1"; fail=1; }; }
col=$build/collector/kl-collector sup=$build/supervisor/kloudlens cc=$build/contractc/contractc

# 1. probe -> NodeCapabilities
if [[ -x $col ]] && command -v node >/dev/null; then
  ran=1
  if "$col" --probe --json > "$tmp/probe.json" 2>"$tmp/probe.err"; then
    node "$here/check.js" nodecaps "$root" "$tmp/probe.json" || fail=1
  else
    echo "FAIL kl-collector --probe --json: $(cat "$tmp/probe.err")"; fail=1
  fi
else
  skip "probe -> NodeCapabilities: $col not built"
fi

# 2. the systemd unit's capability set is enough for the collector, as kloudlens
if [[ -x $col && $(id -u) == 0 ]] && command -v capsh >/dev/null && getent passwd kloudlens >/dev/null; then
  ran=1
  caps=$(sed -n 's/^AmbientCapabilities=//p' "$root/deployments/systemd/kloudlens-collector.service")
  bnd=$(capsh --decode="$(awk '/^CapBnd/ {print $2}' /proc/self/status)" | sed 's/.*=//')
  have=() missing=()
  for c in $caps; do
    lc=${c,,}
    if [[ ,$bnd, == *,$lc,* ]]; then have+=("$lc"); else missing+=("$c"); fi
  done
  [[ ${#missing[@]} -gt 0 ]] && echo "note: not in this sandbox's bounding set, left out: ${missing[*]}"
  list=$(IFS=,; echo "${have[*]}")
  # a copy the kloudlens user can execute (the build tree may be under /root)
  cp "$col" "$tmp/kl-collector" && chmod 0755 "$tmp" "$tmp/kl-collector"
  mkdir -p "$tmp/rings" && chown kloudlens:kloudlens "$tmp/rings"
  if timeout 60 capsh --inh="$list" --keep=1 --user=kloudlens --addamb="$list" -- \
       -c "exec $tmp/kl-collector --dir $tmp/rings --capacity 1048576 --duration 2" > "$tmp/cap.log" 2>&1 \
     && [[ $(stat -c %U "$tmp/rings/raw" 2>/dev/null) == kloudlens ]]; then
    echo "ok   kl-collector runs as kloudlens with only the ambient capabilities $list (raw ring owned by kloudlens)"
    grep -i 'warn\|error' "$tmp/cap.log" | sed 's/^/       /'
  else
    echo "FAIL kl-collector as kloudlens with ambient $list:"; sed 's/^/       /' "$tmp/cap.log"; fail=1
  fi
else
  skip "collector with the unit's capabilities: needs $col, root, capsh and the kloudlens user"
fi

# 3. ConfigMap config.yaml in the real parser
if [[ -x $sup ]] && command -v node >/dev/null; then
  ran=1
  node -e 'const y=require("js-yaml"),fs=require("fs");
    const d=y.loadAll(fs.readFileSync(process.argv[1],"utf8")).find(x=>x.kind==="ConfigMap");
    fs.writeFileSync(process.argv[2], d.data["config.yaml"]);' "$root/deployments/kubernetes/configmap.yaml" "$tmp/config.yaml"
  if "$sup" --config "$tmp/config.yaml" --print-config > "$tmp/eff.yaml" 2>"$tmp/sup.err"; then
    echo "ok   ConfigMap config.yaml accepted by kloudlens --print-config"
  else
    echo "FAIL kloudlens rejects the ConfigMap config.yaml: $(cat "$tmp/sup.err")"; fail=1
  fi
else
  skip "ConfigMap config.yaml: $sup not built"
fi

# 4. contractc accepts the BehaviorContract example
if [[ -x $cc ]]; then
  ran=1
  if out=$("$cc" validate "$root/deployments/examples/behaviorcontract.yaml" 2>&1); then echo "ok   $out"; else echo "FAIL contractc validate: $out"; fail=1; fi
else
  skip "contractc validate: $cc not built"
fi

[[ $fail != 0 ]] && exit 1
[[ $ran == 0 ]] && exit 77
exit 0
