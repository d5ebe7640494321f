#!/usr/bin/env bash
# systemd-analyze verify on deployments/systemd. It exits 0 even on parse
# warnings (unknown keys, bad syscall groups...), so any output is a failure.
# PID 1 need not be systemd: verify only loads the unit files. ExecStart
# binaries must exist, so the units are copied to a temp dir with
# /usr/local/bin/ replaced by a directory holding the real binaries from the
# build tree when they are built, stand-ins otherwise.
# Skips (77) without systemd-analyze unless KLOUDLENS_REQUIRE_LIVE=1.
set -uo pipefail
src=${KLOUDLENS_SOURCE_ROOT:?}/deployments/systemd
build=${KLOUDLENS_BUILD_ROOT:-}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not found"
  [[ ${KLOUDLENS_REQUIRE_LIVE:-0} == 1 ]] && exit 1
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/units"
for b in kl-collector:collector kl-enricher:enricher kl-intentd:intentd kl-graphd:graphd kl-baselined:baselined kl-exporter:exporter; do
  name=${b%%:*} dir=${b##*:}
  if [[ -n $build && -x $build/$dir/$name ]]; then
    ln -s "$build/$dir/$name" "$tmp/bin/$name"; echo "using $build/$dir/$name"
  else
    printf '#!/bin/sh\nexit 0\n' > "$tmp/bin/$name"; chmod +x "$tmp/bin/$name"; echo "stand-in for $name (not built here)"
  fi
done
units=()
for f in "$src"/*.service "$src"/*.target; do
  sed "s#/usr/local/bin/#$tmp/bin/#g" "$f" > "$tmp/units/$(basename "$f")"
  units+=("$tmp/units/$(basename "$f")")
done
fail=0
[[ ${#units[@]} -eq 7 ]] || { echo "FAIL expected 6 services and a target, found ${#units[@]}"; fail=1; }
out=$(cd "$tmp/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "${units[@]}" 2>&1); rc=$?
if [[ $rc -ne 0 || -n $out ]]; then
  echo "FAIL systemd-analyze verify (rc=$rc):"; echo "$out"; fail=1
else
  echo "ok   systemd-analyze verify: ${#units[@]} units, no output"
fi
# the verifier must notice a bad unit (guards against verifying nothing)
sed 's/^ProtectHome=yes/ProtectHome=yes\nProtectHomee=yes/' "$tmp/units/kloudlens-enricher.service" > "$tmp/units/bad-probe.service"
out=$(cd "$tmp/units" && systemd-analyze verify --man=no "$tmp/units/bad-probe.service" 2>&1)
if grep -q "Unknown key 'ProtectHomee'" <<<"$out"; then echo "ok   a misspelt key is reported"; else echo "FAIL a misspelt key was not reported: $out"; fail=1; fi
rm -f "$tmp/units/bad-probe.service"

# policy checks the verifier does not make
col=$src/kloudlens-collector.service
want="CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_RESOURCE CAP_DAC_READ_SEARCH CAP_SYS_PTRACE"
for k in CapabilityBoundingSet AmbientCapabilities; do
  got=$(sed -n "s/^$k=//p" "$col")
  [[ $got == "$want" ]] && echo "ok   collector $k=$want" || { echo "FAIL collector $k='$got', want '$want'"; fail=1; }
done
for s in enricher intentd graphd baselined exporter; do
  f=$src/kloudlens-$s.service
  for kv in 'CapabilityBoundingSet=' 'AmbientCapabilities=' 'User=kloudlens' 'PrivateDevices=yes'; do
    grep -qx "$kv" "$f" && echo "ok   $s: $kv" || { echo "FAIL $s: missing $kv"; fail=1; }
  done
done
for f in "$src"/*.service; do
  n=$(basename "$f" .service) before=$fail
  for kv in 'User=kloudlens' 'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
            'Restart=on-failure' 'ReadWritePaths=/dev/shm/kloudlens /var/lib/kloudlens' 'PartOf=kloudlens.target' \
            'WantedBy=kloudlens.target' 'SystemCallArchitectures=native'; do
    grep -qx "$kv" "$f" || { echo "FAIL $n: missing $kv"; fail=1; }
  done
  grep -q '^RestrictAddressFamilies=' "$f" && grep -q '^SystemCallFilter=' "$f" || { echo "FAIL $n: RestrictAddressFamilies/SystemCallFilter"; fail=1; }
  grep -q '^DynamicUser=yes' "$f" && { echo "FAIL $n: DynamicUser (RemoveIPC would delete the rings)"; fail=1; }
  [[ $fail == "$before" ]] && echo "ok   $n: hardening keys present"
done
# ordering: each consumer after its producer
order() { grep -q "^After=.*$2" "$src/kloudlens-$1.service" && grep -q "^Requires=.*$2" "$src/kloudlens-$1.service"; }
order enricher kloudlens-collector.service && order intentd kloudlens-enricher.service \
  && order graphd kloudlens-enricher.service && order baselined kloudlens-intentd.service \
  && order exporter kloudlens-collector.service \
  && grep -q '^After=.*kloudlens-intentd.service' "$src/kloudlens-exporter.service" \
  && echo "ok   ordering: collector < enricher < intentd, graphd < baselined < exporter" || { echo "FAIL ordering"; fail=1; }
# the target pulls in every stage
for s in collector enricher intentd graphd baselined exporter; do
  grep -q "^Wants=.*kloudlens-$s.service" "$src/kloudlens.target" || { echo "FAIL target: kloudlens-$s.service not wanted"; fail=1; }
done
exit $fail
