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
# the project's own sources in this build, as absolute paths
mapfile -t files < <(python3 - "$build/compile_commands.json" "$root" <<'PY'
import json, os, re, sys
cc, root = sys.argv[1], os.path.realpath(sys.argv[2])
pat = re.compile(r'^' + re.escape(root) +
                 r'/(common|libshm|collector|enricher|intentd|graphd|baselined|exporter|klctl|klrec|contractc|supervisor)/[^/]*\.c$')
seen = set()
for e in json.load(open(cc)):
    f = os.path.realpath(os.path.join(e['directory'], e['file']))
    if pat.match(f) and f not in seen:
        seen.add(f)
        print(f)
PY
)
if [ "${#files[@]}" -eq 0 ]; then
	echo "tidy: no sources of $root in $build (a build of another tree?)" >&2
	exit 2
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run-clang-tidy -quiet -p "$build" -j "$(nproc)" "${files[@]}" >"$out" 2>&1 || true
warnings=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' | sort -u || true)
if [ -n "$warnings" ]; then
	echo "$warnings"
	echo "tidy: $(echo "$warnings" | wc -l) finding(s) in ${#files[@]} files; fix them or justify with NOLINT(check) and a reason" >&2
	exit 1
fi
echo "tidy: clean (${#files[@]} source files)"
