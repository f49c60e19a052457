#!/usr/bin/env bash
# Prepare the official Spatial-Mamba code for benchmarks/spatial_mamba.py --official-src DEST.
#   prepare: benchmarks/spatial_mamba_official.sh prepare <git dir of EdwardChasel/Spatial-Mamba> DEST
#            extracts the pinned commit's model and kernel sources and applies the three build shims of
#            the spec (CUDA 13: no sm_70/sm_80 targets, no at::NoGradGuard in that file, no cub::LaneId /
#            cub::CTA_SYNC; Cython, imported unused by a setup.py); no change to any kernel's math.
#   build:   benchmarks/spatial_mamba_official.sh build DEST   (on the GPU machine; ~2 min with 16 cores)
set -euo pipefail
source "$(dirname "$0")/cuda13_shims.sh"
COMMIT=71221ebfaa5fe797445be0292f0ec7048fe457c1

case "${1:-}" in
prepare)
    git_dir=$2 dest=$3
    mkdir -p "$dest"
    git --git-dir="$git_dir" archive "$COMMIT" classification/models kernels | tar -x -C "$dest"
    drop_old_arch "$dest/kernels/selective_scan/setup.py"
    launch="$dest/kernels/dwconv2d/depthwise_fwd/launch.cu"
    sed -i 's/at::NoGradGuard no_grad;/c10::AutoGradMode no_grad(false);/' "$launch"
    sed -i '1i #include <c10/core/GradMode.h>' "$launch"
    sed -i '/^from Cython.Build import cythonize$/d' "$dest/kernels/dwconv2d/setup.py"  # unused import
    add_cub_lane_shims "$dest/kernels/selective_scan/csrc/selective_scan/reverse_scan.cuh"
    ;;
build)
    dest=$2
    export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS="${MAX_JOBS:-16}"
    (cd "$dest/kernels/selective_scan" && python setup.py build_ext --inplace)
    (cd "$dest/kernels/dwconv2d" && python setup.py build_ext --inplace)
    ;;
*)
    echo "usage: $0 prepare <git dir> DEST | build DEST" >&2
    exit 2
    ;;
esac
