# Thin wrapper over CMake. The two commands of the quick start:
#   make demo   install what is missing, build, run the example application
#   make test   install what is missing, build, run every test (normal, then ASan+UBSan)
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps test-deps build build-asan test test-normal test-asan demo bench clean

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

test-normal: test-deps build
	cd $(BUILD) && SKICK_LOG_LEVEL=error ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(BUILD_ASAN) && SKICK_LOG_LEVEL=error \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

test: test-normal test-asan

demo: build
	@examples/run-demo.sh $(BUILD)

bench: build
	@bench/run-all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
