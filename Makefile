# KloudLens: the two commands (see README.md).
#   sudo make run   install what is missing, build, run the pipeline on this host
#   sudo make test  install what is missing, build, run every test (plain + clang-tidy + ASan/UBSan + fuzz)
BUILD     ?= build
BUILD_SAN ?= build-san
# CI must never build without the BPF sensor: a missing toolchain is an error.
MESON_OPTS ?= -Dwerror=true -Dbpf=enabled

.PHONY: all deps build build-san test test-plain test-san tidy fuzz run bench clean

all: build

deps:
	bash scripts/deps.sh
	bash scripts/node-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized $(MESON_OPTS)

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

build-san: deps $(BUILD_SAN)/build.ninja
	meson compile -C $(BUILD_SAN)

test-plain: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

test-san: build-san
	meson test -C $(BUILD_SAN) --print-errorlogs --num-processes 2 --timeout-multiplier 3

# clang-tidy's bugprone checks (.clang-tidy says which are tuned and why); any finding fails.
tidy: build
	bash scripts/tidy.sh $(BUILD)

# libFuzzer targets for every parser at a trust boundary, bounded in time.
FUZZ_SECONDS ?= 30
fuzz: deps
	bash tests/fuzz/run-fuzzers.sh $(FUZZ_SECONDS)

test: test-plain tidy test-san fuzz

run: build
	bash scripts/run.sh $(BUILD)

bench: build
	$(BUILD)/libshm/libshm-bench

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
