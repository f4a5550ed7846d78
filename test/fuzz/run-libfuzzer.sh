#!/usr/bin/env bash
# Builds a fuzz target with clang's libFuzzer (address and undefined-behaviour sanitizers) into a scratch
# directory and runs it briefly from its seed corpus, so every ./run-tests fuzzes each target (the request
# validator, the IOMMU fault-line parser) for a while, whatever compiler the main build uses. New inputs go
# to the scratch directory, never into the source corpus. Skips (exit 77) when clang or its fuzzer runtime is missing.
#   run-libfuzzer.sh TARGET.c CORPUS_DIR SECONDS SOURCE...
set -uo pipefail
: "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
target=$1 corpus=$2 seconds=$3
shift 3

command -v clang >/dev/null || { echo "clang not found: skipping the libFuzzer run"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

flags=(-std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -I"$VGPU_SOURCE_DIR" -I"$VGPU_SOURCE_DIR/common")
if ! clang "${flags[@]}" -o "$tmp/fuzzer" "$target" "$@" 2>"$tmp/build.log"; then
        if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$tmp/build.log"; then
                echo "clang has no libFuzzer runtime (libclang-rt-14-dev): skipping"
                exit 77
        fi
        cat "$tmp/build.log"
        exit 1
fi
mkdir "$tmp/new"
"$tmp/fuzzer" -max_total_time="$seconds" -timeout=5 -print_final_stats=1 "$tmp/new" "$corpus" 2>&1 | tail -15
exit "${PIPESTATUS[0]}"
