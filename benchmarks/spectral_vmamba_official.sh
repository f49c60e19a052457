#!/usr/bin/env bash
# Prepare the official Spectral VMamba code for benchmarks/spectral_vmamba.py --official-src DEST.
#   prepare: benchmarks/spectral_vmamba_official.sh prepare <git dir of Sahardastani/spectral_vmamba> DEST
#            extracts the pinned commit's model files and its selective-scan kernel (setup.py builds only
#            MODES = ["oflex"], i.e. selective_scan_cuda_oflex) and applies the CUDA-13 build shims: no
#            sm_70/sm_80 targets, cub::LaneId / cub::CTA_SYNC (gone from CUDA 13's CUB) defined beside
#            reverse_scan.cuh's other CUB copies; no change to any kernel's math.
#   build:   benchmarks/spectral_vmamba_official.sh build DEST   (on the GPU machine, with $PYTHON or python3;
#            one extension: two .cu, 150 kernels for sm_90; a test build with nvcc 13.0 took ~70 s on 2 cores)
#            leaves selective_scan_cuda_oflex*.so in DEST/kernels/selective_scan, which the benchmark puts
#            on sys.path. setuptools is imported before setup.py runs: that puts its vendored packaging and
#            wheel (setup.py imports both) on sys.path, so neither has to be installed.
set -euo pipefail
source "$(dirname "$0")/cuda13_shims.sh"
COMMIT=389a8be69919579dac8483d630708e25872774ba

case "${1:-}" in
prepare)
    git_dir=$2 dest=$3
    mkdir -p "$dest"
    git --git-dir="$git_dir" archive "$COMMIT" classification/models kernels/selective_scan | tar -x -C "$dest"
    setup="$dest/kernels/selective_scan/setup.py"
    grep -q '^MODES = \["oflex"\]$' "$setup" || { echo "$setup no longer builds oflex only" >&2; exit 1; }
    drop_old_arch "$setup"
    add_cub_lane_shims "$dest/kernels/selective_scan/csrc/selective_scan/reverse_scan.cuh"
    ;;
build)
    dest=$2
    export TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS="${MAX_JOBS:-16}"
    (cd "$dest/kernels/selective_scan" && "${PYTHON:-python3}" -c 'import runpy, sys, setuptools
sys.argv = ["setup.py", "build_ext", "--inplace"]
runpy.run_path("setup.py", run_name="__main__")')
    ;;
*)
    echo "usage: $0 prepare <git dir> DEST | build DEST" >&2
    exit 2
    ;;
esac
