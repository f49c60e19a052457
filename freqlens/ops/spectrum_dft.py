"""The spectrum measure's per-batch reduction as one fused GPU kernel, for reduced-precision feature maps.

``half_plane_sums(x)`` returns what ``spectral_energy.accumulate_half_plane`` adds for a (B, C, H, W)
tensor: the sums over images and channels of log(|rfft2(x)| + eps) and |rfft2(x)|². cuFFT needs a float32
copy, a complex spectrum and separate amplitude/log/sum passes, which streams every feature map through
memory about ten times; this kernel reads the map once, in any strides (token views included), and keeps
everything else in registers.

The 2-D DFT is two tensor-core matrix products: along W with the real-input half spectrum, then along H.
The products come close to float32 by splitting each float32 operand into a bfloat16 high and low part
(a bfloat16 input is exact as it is; float32 and float16 inputs are split too): x·R = x·R_hi + x·R_lo,
Z·W ≈ Z_hi·W_hi + Z_hi·W_lo + Z_lo·W_hi, accumulated in float32. The error is ~1e-5 of the map's norm
(cuFFT in float32: ~1e-7), far below what reduced-precision features carry; ``supported`` keeps float32
runs on cuFFT.

Maps up to 128x128 are handled; larger ones, other dtypes and CPU tensors take the cuFFT path.
"""
from __future__ import annotations

import functools
import math

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the cuFFT path serves every call
    triton = None

MAX_SIDE = 128


def supported(x: torch.Tensor) -> bool:
    """Whether the fused kernel serves this tensor (else the caller uses cuFFT).

    bfloat16/float16 maps, and float32 maps of an autocast run (timm's residual streams stay float32 under
    autocast, but carry the reduced precision of its products); a float32 run keeps cuFFT's accuracy.
    """
    if triton is None or not x.is_cuda or x.dim() != 4 or max(x.shape[-2:]) > MAX_SIDE:
        return False
    if x.untyped_storage().nbytes() >= 2**31 * x.element_size():
        return False  # the kernel's element offsets are 32-bit: a map batch this large takes cuFFT, in chunks
    return x.dtype in (torch.bfloat16, torch.float16) or (x.dtype == torch.float32 and torch.is_autocast_enabled("cuda"))


def _padded(n: int, floor: int) -> int:
    """n rounded up to a power of two of at least ``floor`` (tl.dot needs every dimension >= 16)."""
    return max(floor, 1 << (n - 1).bit_length())


def _tiles(h: int, w: int) -> tuple[int, int, int]:
    """(PH, PW, PWR): padded rows, columns and rfft columns. W is a contraction dim (>= 16); H and the
    rfft half enter the products doubled (re|im), so 8 suffices there: a 14x14 map keeps 8 of its rfft
    columns, not 16, which halves the second product."""
    return _padded(h, 8), _padded(w, 16), _padded(w // 2 + 1, 8)


def _split(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 matrix → (bf16 high part, bf16 low part) whose float32 sum is the matrix to ~2^-16."""
    hi = m.to(torch.bfloat16)
    lo = (m - hi.to(torch.float64)).to(torch.bfloat16)
    return hi.contiguous(), lo.contiguous()


@functools.lru_cache(maxsize=32)
def dft_matrices(h: int, w: int, hc: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The split DFT matrices for an (h, w) map, zero-padded to the kernel's power-of-two tiles.

    Stage 1, (PW, 2·PWr): rows w, columns (re|im, kw) for kw ≤ w//2 of exp(-2πi·w·kw/W).
    Stage 2, (2·PH, 2·PH): the real form of multiplying by exp(-2πi·kh·h/H); rows (chunk of ``hc`` rows of
    h, re|im of the input, h in chunk), so each step's rows are one contiguous block; columns (re|im of the
    output, kh).
    """
    ph, pw, pwr = _tiles(h, w)
    n = torch.arange(w, dtype=torch.float64)[:, None]
    k = torch.arange(w // 2 + 1, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * n * k / w
    stage1 = torch.zeros(pw, 2 * pwr, dtype=torch.float64)
    stage1[:w, : w // 2 + 1] = torch.cos(angle)
    stage1[:w, pwr : pwr + w // 2 + 1] = -torch.sin(angle)
    hs = torch.arange(h, dtype=torch.float64)
    angle = 2 * math.pi * hs[:, None] * hs[None, :] / h  # [h, kh]
    cos, sin = torch.cos(angle), torch.sin(angle)
    stage2 = torch.zeros(2, ph, 2, ph, dtype=torch.float64)  # (re|im in, h, re|im out, kh)
    stage2[0, :h, 0, :h] = cos
    stage2[1, :h, 0, :h] = sin  # im_in -> re_out: -(-sin)
    stage2[0, :h, 1, :h] = -sin
    stage2[1, :h, 1, :h] = cos
    stage2 = stage2.reshape(2, ph // hc, hc, 2 * ph).transpose(0, 1).reshape(2 * ph, 2 * ph)
    return tuple(t.to(device) for t in (*_split(stage1), *_split(stage2)))


@functools.lru_cache(maxsize=8)
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


PROGRAMS_PER_SM = 2
# (PH, input split into two bfloat16 parts) -> (budget, warps, stages, rows per chunk): the fastest of a
# sweep over budget 4096/8192/16384 x 4/8 warps x 1/2 stages x 32/64 rows on an H200, on the maps of
# resnet50, convnext_tiny and deit_s (`benchmarks/spectrum_kernels.py --sweep`). The budget bounds the
# (map, rfft column, 2·row) elements of one step: G = budget // (PWR·2·PH) maps per step; a chunk of rows
# bounds the registers and shared memory of the products along W.
LAUNCH_CONFIGS = {
    (8, False): (8192, 8, 2, 8), (8, True): (8192, 4, 1, 8),
    (16, False): (16384, 4, 1, 16), (16, True): (8192, 4, 1, 16),
    (32, False): (16384, 4, 1, 32), (32, True): (16384, 4, 1, 32),
    (64, False): (4096, 4, 2, 64), (64, True): (16384, 8, 1, 64),
    (128, False): (4096, 4, 2, 32), (128, True): (8192, 4, 1, 32),
}


def partial_buffer(x: torch.Tensor) -> torch.Tensor:
    """A zeroed float32 buffer that ``accumulate`` adds ``x``-shaped batches into: one slice per program."""
    _, _, h, w = x.shape
    ph, _, pwr = _tiles(h, w)
    return torch.zeros(PROGRAMS_PER_SM * _multiprocessors(x.device), 2, pwr, ph, device=x.device, dtype=torch.float32)


def accumulate(x: torch.Tensor, partial: torch.Tensor, eps: float) -> None:
    """Add the sums over (B, C) of log(|rfft2(x)| + eps) and |rfft2(x)|² of a ``supported`` ``x`` to ``partial``.

    ``partial`` comes from ``partial_buffer`` (same map size); ``fold`` turns it into the (H, W//2+1)
    sums. One kernel launch and nothing else: each program adds its share into its own slice in float32.
    """
    b, c, h, w = x.shape
    channel_blocks, launch = _launch(c, h, w, x.dtype != torch.bfloat16)
    r_hi, r_lo, w_hi, w_lo = dft_matrices(h, w, launch["HC"], x.device)
    _half_plane_kernel[(partial.shape[0],)](
        x, partial, r_hi, r_lo, w_hi, w_lo, b, c, channel_blocks, *x.stride(), h, w, eps, **launch
    )


@functools.lru_cache(maxsize=64)
def _launch(c: int, h: int, w: int, split: bool) -> tuple[int, dict]:
    """Steps per image and the kernel's compile-time settings for C channels of (h, w) maps (cached: the
    lens calls this once per probe point and batch, where host time is scarce)."""
    ph, pw, pwr = _tiles(h, w)
    budget, warps, stages, rows = LAUNCH_CONFIGS[ph, split]
    if pwr >= 128:  # maps wider than 126: the W product's split matrices alone take 128 KB of shared
        stages, rows = 1, min(rows, 32)  # memory, no room for a second stage or a taller chunk
    # channels per step: tall products and a bounded accumulator, but no more than the image has
    group = min(max(1, budget // (pwr * 2 * ph)), _padded(c, 2))  # G·8 rows >= 16
    return triton.cdiv(c, group), dict(PH=ph, PW=pw, PWR=pwr, HC=rows, G=group, SPLIT_X=split,
                                       num_warps=warps, num_stages=stages)


def fold(partial: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (H, W//2+1) float64 log-amplitude and power sums held in a ``partial`` buffer."""
    sums = partial.sum(0, dtype=torch.float64)[:, : w // 2 + 1, :h]  # (2, kw, kh)
    return sums[0].T, sums[1].T


def half_plane_sums(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W//2+1) float64 sums over (B, C) of log(|rfft2(x)| + eps) and |rfft2(x)|² for a ``supported`` ``x``."""
    partial = partial_buffer(x)
    accumulate(x, partial, eps)
    return fold(partial, *x.shape[-2:])


if triton is not None:

    @triton.jit
    def _split_dot(a, b_hi, b_lo, acc, SPLIT_A: tl.constexpr):
        """acc + a·(b_hi + b_lo) in float32 from bfloat16 products; a is split too unless it is bfloat16."""
        if SPLIT_A:
            a32 = a.to(tl.float32)
            a_hi = a32.to(tl.bfloat16)
            a_lo = (a32 - a_hi.to(tl.float32)).to(tl.bfloat16)
            acc = tl.dot(a_hi, b_hi, acc)
            acc = tl.dot(a_hi, b_lo, acc)
            acc = tl.dot(a_lo, b_hi, acc)
        else:
            acc = tl.dot(a, b_hi, acc)
            acc = tl.dot(a, b_lo, acc)
        return acc

    @triton.jit
    def _half_plane_kernel(x_ptr, out_ptr, r_hi_ptr, r_lo_ptr, w_hi_ptr, w_lo_ptr, batch, channels, channel_blocks,
                           stride_b, stride_c: tl.constexpr, stride_h: tl.constexpr, stride_w: tl.constexpr,
                           h: tl.constexpr, w: tl.constexpr, eps,
                           PH: tl.constexpr, PW: tl.constexpr, PWR: tl.constexpr, HC: tl.constexpr,
                           G: tl.constexpr, SPLIT_X: tl.constexpr):
        # The map's size and strides are compile-time constants: the compiler then knows the alignment of
        # each row and the extent of each mask, and vectorises the loads (56x56 maps: 27% faster).
        pid = tl.program_id(0)
        programs = tl.num_programs(0)
        g = tl.arange(0, G)
        rows = tl.arange(0, HC)
        cols = tl.arange(0, PW)
        r1 = tl.arange(0, PW)[:, None] * (2 * PWR) + tl.arange(0, 2 * PWR)[None, :]
        r_hi = tl.load(r_hi_ptr + r1)
        r_lo = tl.load(r_lo_ptr + r1)
        r2 = tl.arange(0, 2 * HC)[:, None] * (2 * PH) + tl.arange(0, 2 * PH)[None, :]
        log_acc = tl.zeros((PWR, PH), dtype=tl.float32)
        pow_acc = tl.zeros((PWR, PH), dtype=tl.float32)
        # a step: G consecutive channels of one image, so channel-last views (tokens, NHWC) load coalesced
        for step in range(pid, batch * channel_blocks, programs):
            c = (step % channel_blocks) * G + g
            valid = c < channels
            base = (step // channel_blocks) * stride_b + c * stride_c
            y = tl.zeros((G * PWR, 2 * PH), dtype=tl.float32)
            for chunk in range(PH // HC):
                hs = chunk * HC + rows
                offs = hs[:, None] * stride_h + cols[None, :] * stride_w
                inside = (hs[:, None] < h) & (cols[None, :] < w)
                tile = tl.load(x_ptr + base[:, None, None] + offs[None, :, :],
                               mask=valid[:, None, None] & inside[None, :, :], other=0.0)
                tile = tl.reshape(tile, (G * HC, PW))
                # along W: Z = x·R, (G·HC, 2·PWR) with columns (re|im, kw)
                z = _split_dot(tile, r_hi, r_lo, tl.zeros((G * HC, 2 * PWR), dtype=tl.float32), SPLIT_X)
                # to rows (g, kw) and columns (re|im, h) for the product along H
                z = tl.reshape(z, (G, HC, 2, PWR))
                z = tl.permute(z, (0, 3, 2, 1))
                z = tl.reshape(z, (G * PWR, 2 * HC))
                w_offs = chunk * (2 * HC) * (2 * PH) + r2
                y = _split_dot(z, tl.load(w_hi_ptr + w_offs), tl.load(w_lo_ptr + w_offs), y, True)
            # y: (G·PWR, 2·PH), columns (re|im, kh)
            power = tl.sum(tl.reshape(y * y, (G, PWR, 2, PH)), axis=2)
            weight = tl.where(valid, 1.0, 0.0)[:, None, None]
            log_acc += tl.sum(tl.log(tl.sqrt(power) + eps) * weight, axis=0)
            pow_acc += tl.sum(power * weight, axis=0)
        out = pid * (2 * PWR * PH) + tl.arange(0, PWR)[:, None] * PH + tl.arange(0, PH)[None, :]
        tl.store(out_ptr + out, tl.load(out_ptr + out) + log_acc)  # this program's own slice: no atomics
        tl.store(out_ptr + out + PWR * PH, tl.load(out_ptr + out + PWR * PH) + pow_acc)
