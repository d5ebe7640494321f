#!/usr/bin/env bash
# Install every Debian package KloudLens needs to build, test and run.
# Idempotent: only missing packages are installed; safe to run repeatedly.
set -euo pipefail

PKGS=(
  # build
  meson ninja-build pkg-config gcc clang clang-tidy llvm bpftool
  libbpf-dev libelf-dev zlib1g-dev liburing-dev libprotobuf-c-dev protobuf-c-compiler
  libnng-dev libyaml-dev libjansson-dev libcap-dev libcriterion-dev
  # tests: oracles, real containers, enforcers' own checkers
  strace linux-perf bpftrace runc crun containerd busybox-static seccomp libseccomp-dev
  apparmor prometheus jq iproute2 procps python3 graphviz
  # kl-exporter tests: the interop client (Debian python3 + protobuf), /metrics fetches
  python3-protobuf curl
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js is only for the Kubernetes schema validator (ajv); the machine
# image may carry its own nodejs build, which Debian's npm conflicts with.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
