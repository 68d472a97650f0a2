# Two commands for a user: `make demo` and `make test`. Both install what they need first
# (`make deps`: Debian packages + the tools venv), so a fresh Debian 12 machine with only the
# Swift toolchain is enough.

SHELL := /bin/bash
APT_PACKAGES := libonnx-dev libprotobuf-dev protobuf-compiler libopenblas-dev libjpeg-dev libpng-dev python3 python3-venv
VENV := tools/.venv
PY := $(VENV)/bin/python
TORCH_VENV := tools/.venv-torch
BENCH_VENV := tools/.venv-bench
# Release build: the kernels are numeric code, and the tests run real models. `-enable-testing`
# on both build and test so that `swift test` reuses the build instead of compiling it twice.
SWIFT_CONFIG := -c release -Xswiftc -enable-testing
MANET := .build/release/manet
# The Swift driver leaves an empty TemporaryDirectory.* in $TMPDIR each time it runs (swiftlang/
# swift-driver issues 1720 and 2049), dozens per build: the swift commands here get a TMPDIR of
# their own, emptied before and after (the tests' temporary folders go there too).
SWIFT_TMP := $(CURDIR)/.build/tmp
SWIFT := TMPDIR=$(SWIFT_TMP) swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps apt venv build proto proto-check consumer test demo fixtures conformance-data clean fuzz sanitize install bench

deps: apt venv

# Installs only what is missing, so a second run does nothing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# The venv is rebuilt only when tools/requirements.txt changes.
venv: $(VENV)/.installed

$(VENV)/.installed: tools/requirements.txt
	@echo "deps: creating the tools venv ($(VENV)) from tools/requirements.txt"
	@rm -rf $(VENV) && python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt
	@touch $@

build: deps proto-check
	@rm -rf $(SWIFT_TMP) && mkdir -p $(SWIFT_TMP)
	$(SWIFT) build $(SWIFT_CONFIG)
	@rm -rf $(SWIFT_TMP)

# Sources/_CONNX/checkpoint.pb.{h,cc} are generated from proto/checkpoint.proto by protoc and
# committed (SwiftPM cannot run protoc for a C++ target). `make proto` regenerates them, e.g. after
# a protobuf upgrade; `make build` first checks that the committed copy is what this protoc makes.
proto: apt
	@bash tools/build/protoc.sh

proto-check: apt
	@bash tools/build/protoc.sh --check

# The test suite: Swift unit and end-to-end tests, with the onnx package's model zoo and node
# conformance data made available from the tools venv.
# The tests are built by `swift build --build-tests` and run with `--skip-build`: letting `swift test`
# build them itself uses other build parameters, so that the next `swift build` (e.g. `make demo`)
# recompiled every target, and the other way round.
test: build
	@rm -rf $(SWIFT_TMP) && mkdir -p $(SWIFT_TMP)
	$(SWIFT) build $(SWIFT_CONFIG) --build-tests
	@$(PY) tools/parity/gen_node_tests.py .build/onnx-node-tests
	MANET_ONNX_DATA="$$($(PY) -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))')" \
	MANET_NODE_TESTS="$(CURDIR)/.build/onnx-node-tests" \
	MANET_PYTHON="$(CURDIR)/$(PY)" \
	MANET_BINARY="$(CURDIR)/$(MANET)" \
	$(SWIFT) test $(SWIFT_CONFIG) --skip-build --disable-swift-testing
	@rm -rf $(SWIFT_TMP)
	@bash tools/build/consumer.sh "$(MANET)"

# `make install PREFIX=/usr/local` (default): bin/manet, share/man/man1/manet.1 (every command's
# --help) and the bash, zsh and fish completions; DESTDIR is prepended when set.
PREFIX ?= /usr/local
install: build
	@bash tools/build/install.sh "$(MANET)" "$(PREFIX)"

# A package that depends on this one by version (a tagged clone of HEAD) classifies an image
# through the public API and must agree with `manet run` (tools/build/consumer.sh).
consumer: build
	@bash tools/build/consumer.sh "$(MANET)"

demo: build
	@bash tools/demo/demo.sh "$(MANET)"

# Fuzzing (not part of `make test`): builds the libFuzzer harnesses in Fuzz/ with AddressSanitizer
# (the toolchain's libFuzzer; instruments the Swift and the C/C++ layers) and runs each target for
# FUZZ_SECONDS; fails if one finds a crash, leak or hang. Found inputs go to
# fixtures/fuzz-regressions/<target>/, which `make test` replays. Swift's -sanitize=fuzzer together
# with address adds no coverage counters to optimized Swift code, hence the explicit -sanitize-coverage.
FUZZ_SECONDS ?= 60
FUZZ_DIR := .build/fuzz
fuzz: apt
	cd Fuzz && swift build -c release --sanitize fuzzer --sanitize address --scratch-path ../$(FUZZ_DIR)/build \
	  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
	@bash Fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The test suite under AddressSanitizer (Swift and the C/C++ layer) and UndefinedBehaviorSanitizer
# (the C/C++ layer), built in its own scratch path; fails on any sanitizer report, also from the
# `manet` processes the CLI tests start. Not part of `make test`. See tools/build/sanitize.sh.
SANITIZE_DIR := .build-sanitize
sanitize: deps
	@$(PY) tools/parity/gen_node_tests.py $(SANITIZE_DIR)/onnx-node-tests
	MANET_ONNX_DATA="$$($(PY) -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))')" \
	MANET_NODE_TESTS="$(CURDIR)/$(SANITIZE_DIR)/onnx-node-tests" \
	MANET_PYTHON="$(CURDIR)/$(PY)" \
	bash tools/build/sanitize.sh $(SANITIZE_ARGS)

# Regenerates every committed fixture with real PyTorch (needs ~5 GB; never run by CI).
fixtures: deps
	@[ -x $(TORCH_VENV)/bin/python ] || { python3 -m venv $(TORCH_VENV) && $(TORCH_VENV)/bin/pip install -q -r tools/requirements-torch.txt; }
	$(TORCH_VENV)/bin/python tools/fixtures/make_fixtures.py fixtures

# Benchmarks manet against onnxruntime, OpenVINO and PyTorch eager (tools/bench/bench; BENCH_ARGS
# passes options, e.g. BENCH_ARGS="--quick --no-train"). The venv is rebuilt only when
# tools/bench/requirements-bench.txt changes. Never run by `make test`.
$(BENCH_VENV)/.installed: tools/bench/requirements-bench.txt
	@echo "bench: creating the benchmark venv ($(BENCH_VENV)) from tools/bench/requirements-bench.txt"
	@rm -rf $(BENCH_VENV) && python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r tools/bench/requirements-bench.txt
	@touch $@

bench: deps $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python tools/bench/bench $(BENCH_ARGS)

clean:
	rm -rf .build
