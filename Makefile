# The two commands a newcomer needs:
#   make test   installs what is missing, builds (release preset), runs every test
#   make demo   the decode -> scale -> X display pipeline, with timings
# and a few more for developers:
#   make bench        benchmarks, side by side, tables printed (see BENCHMARKS.md)
#   make test-asan    every test under AddressSanitizer + UBSan
#   make format-check clang-format check of every source file
#   make fuzz         each libFuzzer target for FUZZ_SECONDS (tests/fuzz/run)
#   make stress       clients SIGKILLed at random against an ASan pmmd for
#                     STRESS_SECONDS, then the books must be empty and clean
#                     (tests/stress/run)
JOBS ?= $(shell nproc)
PRESET ?= release
FUZZ_SECONDS ?= 60
STRESS_SECONDS ?= 120

.PHONY: deps build test test-asan bench demo format format-check clean fuzz stress

deps:
	@scripts/install-deps

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(JOBS)

test: build
	ctest --preset $(PRESET) -j $(JOBS)

test-asan:
	$(MAKE) test PRESET=asan

bench: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target pmm_bench_alloc pmm_bench_daemon pmm_bench_read_costs
	bench/run
	bench/daemon/run
	build/release/bench/daemon/pmm_bench_read_costs

demo: build
	examples/demo.sh build/$(PRESET)

format-check: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) --target format-check

format: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) --target format

fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) tests/fuzz/run

stress: deps
	STRESS_SECONDS=$(STRESS_SECONDS) JOBS=$(JOBS) tests/stress/run

clean:
	rm -rf build
