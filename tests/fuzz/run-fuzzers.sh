#!/usr/bin/env bash
# Build the libFuzzer targets (contractc's parsers, the record decoder, the record-file reader) with clang (fuzzer + ASan + UBSan) and
# run each for SECONDS (default 60) on a copy of its seed corpus.
# usage: tests/fuzz/run-fuzzers.sh [SECONDS]
# Self-contained: compiles the contractc sources directly, needs only clang,
# libyaml-dev, libjansson-dev and libseccomp-dev. Exit non-zero on any crash.
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/kl-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT
CC=${CC_FUZZ:-clang}
srcs=()
for f in "$root"/contractc/*.c; do
  [[ $(basename "$f") == main.c ]] || srcs+=("$f")
done
flags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$root/contractc" -I"$root/include")
libs=($(pkg-config --libs yaml-0.1 jansson libseccomp))
rc=0
for t in contract profile; do
  echo "== fuzz_$t: building"
  "$CC" "${flags[@]}" -o "$out/fuzz_$t" "$root/tests/fuzz/fuzz_$t.c" "${srcs[@]}" "${libs[@]}"
  mkdir -p "$out/corpus_$t"
  cp "$root/tests/fuzz/fuzz_${t}_corpus/"* "$out/corpus_$t/"
  echo "== fuzz_$t: running for ${secs}s"
  # -max_len keeps inputs near real contract sizes; rss limit guards leaks
  if ! (cd "$out" && ./"fuzz_$t" -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus_$t" > "fuzz_$t.log" 2>&1); then
    echo "fuzz_$t FAILED; last lines:"; tail -40 "$out/fuzz_$t.log"
    mkdir -p "$root/tests/fuzz/crashes"
    cp "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$root/tests/fuzz/crashes/" 2>/dev/null || true
    rc=1
  else
    grep -E 'stat::number_of_executed_units|cov:' "$out/fuzz_$t.log" | tail -2
    echo "fuzz_$t: ok"
  fi
done

# The ring record decoder and the record-file reader (common/, klrec/).
python3 "$root/common/gen-syscalls.py" /usr/include/x86_64-linux-gnu/asm/unistd_64.h "$out/syscall-names.c"
rflags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=undefined -I"$root/include")
rsrcs=("$root/common/recutil.c" "$root/common/json.c" "$out/syscall-names.c" "$root/klrec/recfile.c")
for t in record recfile; do
  echo "== fuzz_$t: building"
  "$CC" "${rflags[@]}" -o "$out/fuzz_$t" "$root/tests/fuzz/fuzz_$t.c" "${rsrcs[@]}" -lz
  mkdir -p "$out/corpus_$t"
  cp "$root/tests/fuzz/fuzz_${t}_corpus/"* "$out/corpus_$t/"
  echo "== fuzz_$t: running for ${secs}s"
  if ! (cd "$out" && ./"fuzz_$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus_$t" > "fuzz_$t.log" 2>&1); then
    echo "fuzz_$t FAILED; last lines:"; tail -40 "$out/fuzz_$t.log"
    mkdir -p "$root/tests/fuzz/crashes"
    cp "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$root/tests/fuzz/crashes/" 2>/dev/null || true
    rc=1
  else
    grep -E 'stat::number_of_executed_units|cov:' "$out/fuzz_$t.log" | tail -2
    echo "fuzz_$t: ok"
  fi
done
exit $rc
