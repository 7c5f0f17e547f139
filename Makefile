# The two commands a new user needs (see README):
#   make run    install what is missing, build, start Orrery on ./var with a development CA
#   make test   install what is missing, build, run every test (+ ASan/UBSan unit tests and a
#               bounded fuzz pass from one clang build, format check)
# Also: make build, make bench, make format, make fuzz, make clean.

BUILD_DIR  ?= build/rel
ASAN_DIR   ?= build/asan
DATA_DIR   ?= var
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja
# The Azure SDKs' REST and WebSocket clients only use 443; binding it needs root
# (or CAP_NET_BIND_SERVICE). Non-root developers get 8443 and a note.
HTTPS_PORT ?= $(if $(filter 0,$(shell id -u)),443,8443)

FORMAT_FILES = $(shell git ls-files '*.h' '*.cc' 2>/dev/null)

.PHONY: deps build run test test-asan test-fuzz format format-check bench fuzz clean

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@scripts/run-dev $(BUILD_DIR)/apps/orrery/orrery $(DATA_DIR) $(HTTPS_PORT)

# The format check runs first: it takes seconds and would otherwise fail a 30-minute run at the end.
test: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory build
	@scripts/install-node-deps
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-fuzz

# One clang build serves the sanitizer unit tests and the fuzzers, so the libraries compile once
# for both: ASan+UBSan everywhere plus libFuzzer's coverage instrumentation, at -O1 (what ASan
# recommends; the fuzz smoke runs a fixed number of inputs, which -O0 would make slow).
SAN_CMAKE = CC=clang CXX=clang++ cmake -S . -B $(ASAN_DIR) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug \
	  -DORRERY_SANITIZE=ON -DORRERY_FUZZ=ON -DORRERY_UNIT_ONLY=ON -DORRERY_BENCH=OFF \
	  -DORRERY_WERROR=OFF "-DCMAKE_CXX_FLAGS=-O1 -fsanitize=fuzzer-no-link" \
	  "-DCMAKE_C_FLAGS=-O1 -fsanitize=fuzzer-no-link"

test-asan: deps
	$(SAN_CMAKE)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -L unit --output-on-failure -j $(JOBS)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "clang-format: clean"

bench: build
	scripts/run-bench $(BUILD_DIR)

fuzz: deps
	$(SAN_CMAKE)
	cmake --build $(ASAN_DIR) -j $(JOBS) --target fuzzers

# A bounded libFuzzer pass over each seed corpus (part of make test, after test-asan built them).
test-fuzz: fuzz
	cd $(ASAN_DIR) && ctest -L fuzz --output-on-failure -j $(JOBS)

clean:
	rm -rf build
