#!/usr/bin/env bash
# Runs bench-config (10,000 VMs registered, shown and listed over the bus) against a fresh vgpu-devstack,
# and prints the database size. Usage: bench-config.sh [N_VMS]
set -euo pipefail
: "${VGPU_BUILD_DIR:?VGPU_BUILD_DIR must name the build directory}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$VGPU_BUILD_DIR/vgpu-devstack" --quiet --state-dir "$dir/stack" -- \
        "$VGPU_BUILD_DIR/test/bench/bench-config" "${1:-10000}"
echo "database size: $(du -k "$dir/stack/config.db" | cut -f1) KiB (+ WAL $(du -k "$dir/stack/config.db-wal" 2>/dev/null | cut -f1 || echo 0) KiB)"
