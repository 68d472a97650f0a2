#!/bin/bash
# `make fuzz`: runs every libFuzzer target (built in $FUZZ_DIR/build by the Makefile) for
# FUZZ_SECONDS each, from the seeds Fuzz/seeds.txt selects, the generated ones (FuzzTarget.generatedSeeds,
# written by the binary itself via MANET_FUZZ_SEEDS) and fixtures/fuzz-regressions. Prints executions, coverage and corpus size per target; exits non-zero
# if any target found a crash, leak, hang (10 s) or out-of-memory, leaving the input in
# $FUZZ_DIR/artifacts/<target>/. Leaks in code outside this repository are suppressed as listed,
# with reasons, in tools/build/lsan.supp (shared with `make sanitize`).
#   usage: Fuzz/run.sh FUZZ_DIR SECONDS [target...]
set -u
cd "$(dirname "$0")/.."
dir=$1; seconds=$2; shift 2
targets=${*:-onnx checkpoint safetensors npy tensor image pth}
bin=$dir/build/release
failed=()
printf '%-12s %12s %8s %8s %8s  %s\n' target execs cov ft corpus result
for t in $targets; do
  seeds=$dir/seeds/$t; corpus=$dir/corpus/$t; artifacts=$dir/artifacts/$t
  rm -rf "$seeds"; mkdir -p "$seeds" "$corpus" "$artifacts"
  while read -r target suffix max; do
    [ "$target" = "$t" ] || continue
    find fixtures -path fixtures/fuzz-regressions -prune -o -type f -name "*$suffix" -size -$((max + 1))c -print |
      while read -r f; do cp "$f" "$seeds/$(echo "${f#fixtures/}" | tr / _)"; done
  done < <(grep -v '^#' Fuzz/seeds.txt)
  for extra in fixtures/fuzz-regressions/$t; do
    [ -d "$extra" ] && for f in "$extra"/*; do [ -f "$f" ] && cp "$f" "$seeds/$(echo "${f#fixtures/}" | tr / _)"; done
  done
  log=$dir/$t.log
  LSAN_OPTIONS="suppressions=$PWD/tools/build/lsan.supp:print_suppressions=0" MANET_FUZZ_SEEDS=$seeds "$bin/fuzz-$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
  size=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then result=ok; else result="FAILED (exit $rc, see $log and $artifacts/)"; failed+=("$t"); fi
  printf '%-12s %12s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$size" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then echo "fuzz: defects found in: ${failed[*]}"; exit 1; fi
