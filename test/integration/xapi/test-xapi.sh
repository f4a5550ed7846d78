#!/usr/bin/env bash
# The XAPI side (xapi/) against the real services of a vgpu-devstack over its private D-Bus bus: the host
# plugin's functions, the VM-start mirror, the hook script and the device-model wrapper, with XAPI itself
# replaced by the fake XenAPI module in fake/ (XAPI cannot run here). vgpu-iommud reads a copy of the
# recorded Intel VT-d tree, so that the IOMMU verdict is the same on every machine. The checks are in
# test-xapi.py, which speaks TAP.
source "$(dirname "$0")/../lib.sh"

if [ -z "${VGPU_TEST_TMP:-}" ]; then
        : "${VGPU_SOURCE_DIR:?VGPU_SOURCE_DIR must name the source directory}"
        VGPU_IOMMU_TREE=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-iommu-tree.XXXXXX")
        trap 'rm -rf "$VGPU_IOMMU_TREE"' EXIT
        cp -a "$VGPU_SOURCE_DIR/test/data/iommu/intel-vtd/." "$VGPU_IOMMU_TREE/"
        export VGPU_IOMMU_TREE
fi
devstack_reexec --iommu-root="$VGPU_IOMMU_TREE" -- "$@"

export LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1   # keep the source tree clean
exec python3 "$VGPU_SOURCE_DIR/test/integration/xapi/test-xapi.py"
