# Build shims for the official Mamba-family scan kernels under CUDA 13, sourced by the *_official.sh scripts.
# None changes a kernel's math.

# drop_old_arch SETUP_PY: remove the sm_70 / sm_80 -gencode targets (CUDA 13 dropped sm_70; we build sm_90).
drop_old_arch() {
    python3 - "$1" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
for arch in ("70", "80"):
    forms = [f'    cc_flag.append("-gencode")\n    cc_flag.append("arch=compute_{arch},code=sm_{arch}")\n',
             f'    cc_flag.extend(["-gencode", "arch=compute_{arch},code=sm_{arch}"])\n']
    found = [form for form in forms if form in text]
    assert found, f"sm_{arch} flags not found in {path}"
    text = text.replace(found[0], "")
open(path, "w").write(text)
EOF
}

# add_cub_lane_shims REVERSE_SCAN_CUH: define cub::LaneId and cub::CTA_SYNC, gone from CUDA 13's CUB.
add_cub_lane_shims() {
    grep -q '^#include "cub_extra.cuh"$' "$1"
    sed -i '/#include "cub_extra.cuh"/a namespace cub {\n__device__ __forceinline__ unsigned int LaneId() { unsigned int id; asm volatile("mov.u32 %0, %%laneid;" : "=r"(id)); return id; }\n__device__ __forceinline__ void CTA_SYNC() { __syncthreads(); }\n}' "$1"
}
