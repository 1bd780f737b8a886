# Thin wrapper over CMake. The two commands of the quick start:
#   make demo   install what is missing, build, run the example application
#   make test   install what is missing, build, run every test (normal, then ASan+UBSan,
#               then each fuzzer: its regressions, and FUZZ_TEST_SECONDS of fuzzing)
#   make fuzz   fuzz each target for FUZZ_SECONDS (docs/fuzzing.md)
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS      ?= 300
FUZZ_TEST_SECONDS ?= 30
FUZZ_TARGETS      ?=
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: soak all deps test-deps build build-asan build-fuzz test test-normal test-asan test-fuzz \
        fuzz demo bench clean

all: build

deps:
	@deploy/install-deps.sh

test-deps:
	@deploy/install-deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKICK_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan: test-deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSKICK_WERROR=ON -DSKICK_SANITIZE=ON \
	      -DSKICK_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# The fuzzers: clang, libFuzzer, ASan+UBSan, asserts on; tests, examples and
# benchmarks are not built there.
build-fuzz: test-deps
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSKICK_FUZZ=ON \
	      -DSKICK_BUILD_TESTS=OFF -DSKICK_BUILD_BENCH=OFF -DSKICK_BUILD_EXAMPLES=OFF \
	      $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS)

test-normal: test-deps build
	cd $(BUILD) && SKICK_LOG_LEVEL=error ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(BUILD_ASAN) && SKICK_LOG_LEVEL=error \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# The regressions and seeds replayed (ctest), then a bounded fuzz of each target.
test-fuzz: build-fuzz
	cd $(BUILD_FUZZ) && ctest --output-on-failure -j $(JOBS)
	tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_TEST_SECONDS) $(FUZZ_TARGETS)

fuzz: build-fuzz
	tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test: test-normal test-asan test-fuzz

demo: build
	@examples/run-demo.sh $(BUILD)

bench: build
	@bench/run-all.sh $(BUILD)

# Minutes of mixed traffic with churn, memory and descriptors sampled (not CI).
SOAK_MINUTES ?= 10
soak: build
	@/usr/bin/python3 bench/soak.py $(BUILD) --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
