#!/usr/bin/env bash
# `make sanitize`: the test suite under AddressSanitizer (Swift and the C/C++ layer) and
# UndefinedBehaviorSanitizer (the C/C++ layer: _CONNX, _CImageCodec, _CKernels), in its own scratch path.
# Fails on any sanitizer report, including reports from the `manet` processes the CLI tests start
# (every report goes to a log file, because a test that expects a non-zero exit would otherwise
# take a sanitizer abort for the error it wanted).
#
# Swift has no -sanitize=undefined on Linux, so UBSan reaches the C targets through -Xcc; its
# handlers link from the ASan runtime that -sanitize=address brings. libopenblas, libonnx,
# libprotobuf, libjpeg and libpng are Debian's and not instrumented.
#
# Environment: MANET_ONNX_DATA, MANET_NODE_TESTS, MANET_PYTHON as for `make test` (the Makefile
# sets them); MANET_BINARY is set here to the sanitized binary. Extra arguments go to `swift test`
# (e.g. `--filter ONNXFormatTests`).
set -uo pipefail
cd "$(dirname "$0")/../.."

scratch=.build-sanitize
flags=(-c release -Xswiftc -enable-testing --sanitize address
       -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=all
       --scratch-path "$scratch")

swift build "${flags[@]}" --build-tests || exit 1

# The C/C++ objects must really carry the instrumentation: SwiftPM forwards the flags to clang,
# and this would silently test nothing if it stopped doing so.
objects="$scratch/release"
for object in "$objects"/_CONNX.build/*.o "$objects"/_CImageCodec.build/*.o "$objects"/_CKernels.build/*.o; do
    undefined=$(nm -u "$object")
    if ! grep -q '__asan_report' <<<"$undefined" || ! grep -q '__ubsan_handle' <<<"$undefined"; then
        echo "sanitize: $object is not instrumented with ASan and UBSan" >&2
        exit 1
    fi
done
if ! grep -q '__asan_report' <<<"$(nm -u "$objects"/Runtime.build/Tensor.swift.o)"; then
    echo "sanitize: the Swift objects are not instrumented with ASan" >&2
    exit 1
fi
echo "sanitize: _CONNX, _CImageCodec and _CKernels objects carry ASan and UBSan checks, Swift objects ASan's"

reports="$PWD/$scratch/sanitizer-reports"
rm -rf "$reports" && mkdir -p "$reports"
common="log_path=$reports/report:print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="$common"
export LSAN_OPTIONS="suppressions=$PWD/tools/build/lsan.supp:print_suppressions=0"
export MANET_BINARY="$PWD/$objects/manet"

start=$SECONDS
# --skip-build: without it, `swift test` recompiles every Swift module just built (its build
# parameters differ from `swift build --build-tests`'s in release), doubling the build time.
swift test "${flags[@]}" --skip-build --disable-swift-testing "$@"
status=$?
echo "sanitize: swift test exited with $status after $((SECONDS - start)) s"

shopt -s nullglob
found=("$reports"/report*)
if [ ${#found[@]} -gt 0 ]; then
    for report in "${found[@]}"; do
        echo "===== $report" >&2
        cat "$report" >&2
    done
    echo "sanitize: ${#found[@]} sanitizer report(s) above" >&2
    exit 1
fi
[ "$status" -eq 0 ] || exit "$status"
echo "sanitize: no sanitizer reports"
