#!/bin/bash
# clang-tidy (.clang-tidy: bugprone checks) over every C source of a meson
# build dir's compile_commands.json that belongs to the project (not
# generated code, not tests' criterion macros). Prints the warnings and
# exits 1 when there is any.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$build/compile_commands.json" ] || { echo "tidy: no $build/compile_commands.json (meson setup first)" >&2; exit 2; }
command -v run-clang-tidy >/dev/null || { echo "tidy: run-clang-tidy missing (apt-get install clang-tidy)" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# project sources only: generated protobuf/syscall tables and the tests are not linted here
run-clang-tidy -quiet -p "$build" -j "$(nproc)" \
	"$root/(common|libshm|collector|enricher|intentd|graphd|baselined|exporter|klctl|klrec|contractc|supervisor)/[^/]*\.c$" \
	>"$out" 2>&1 || true
warnings=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' | sort -u || true)
if [ -n "$warnings" ]; then
	echo "$warnings"
	echo "tidy: $(echo "$warnings" | wc -l) finding(s); fix them or justify with NOLINT(check) and a reason" >&2
	exit 1
fi
echo "tidy: clean ($(grep -c '"file"' "$build/compile_commands.json") translation units in the build)"
