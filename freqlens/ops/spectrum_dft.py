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

Maps up to 64x64 are handled; larger ones, other dtypes and CPU tensors take the cuFFT path.
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

MAX_SIDE = 64


def supported(x: torch.Tensor) -> bool:
    """Whether the fused kernel serves this tensor (else the caller uses cuFFT).

    bfloat16/float16 maps, and float32 maps of an autocast run (timm's residual streams stay float32 under
    autocast, but carry the reduced precision of its products); a float32 run keeps cuFFT's accuracy.
    """
    if triton is None or not x.is_cuda or x.dim() != 4 or max(x.shape[-2:]) > MAX_SIDE:
        return False
    return x.dtype in (torch.bfloat16, torch.float16) or (x.dtype == torch.float32 and torch.is_autocast_enabled("cuda"))


def _padded(n: int) -> int:
    return max(16, 1 << (n - 1).bit_length())


def _split(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 matrix → (bf16 high part, bf16 low part) whose float32 sum is the matrix to ~2^-16."""
    hi = m.to(torch.bfloat16)
    lo = (m - hi.to(torch.float64)).to(torch.bfloat16)
    return hi.contiguous(), lo.contiguous()


def _chunk(ph: int) -> int:
    """Rows of the map per step along H: bounds the registers and shared memory of one step."""
    return min(ph, 32)


@functools.lru_cache(maxsize=32)
def dft_matrices(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The split DFT matrices for an (h, w) map, zero-padded to the kernel's power-of-two tiles.

    Stage 1, (PW, 2·PWr): rows w, columns (re|im, kw) for kw ≤ w//2 of exp(-2πi·w·kw/W).
    Stage 2, (2·PH, 2·PH): the real form of multiplying by exp(-2πi·kh·h/H); rows (chunk of h, re|im of
    the input, h in chunk), so each step's rows are one contiguous block; columns (re|im of the output, kh).
    """
    ph, pw, pwr = _padded(h), _padded(w), _padded(w // 2 + 1)
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
    hc = _chunk(ph)
    stage2 = stage2.reshape(2, ph // hc, hc, 2 * ph).transpose(0, 1).reshape(2 * ph, 2 * ph)
    return tuple(t.to(device) for t in (*_split(stage1), *_split(stage2)))


def _programs(x: torch.Tensor, steps: int) -> int:
    """A few waves of programs, each looping over its share of the steps."""
    return max(1, min(steps, 4 * torch.cuda.get_device_properties(x.device).multi_processor_count))


def half_plane_sums(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W//2+1) float64 sums over (B, C) of log(|rfft2(x)| + eps) and |rfft2(x)|² for a ``supported`` ``x``."""
    b, c, h, w = x.shape
    ph, pw, pwr = _padded(h), _padded(w), _padded(w // 2 + 1)
    group = max(1, 8192 // (pwr * 2 * ph))  # maps per step: tall products, bounded accumulator
    maps = b * c
    programs = _programs(x, triton.cdiv(maps, group))
    partial = torch.empty(programs, 2, pwr, ph, device=x.device, dtype=torch.float32)
    r_hi, r_lo, w_hi, w_lo = dft_matrices(h, w, x.device)
    _half_plane_kernel[(programs,)](
        x, partial, r_hi, r_lo, w_hi, w_lo, maps, c, *x.stride(), h, w, eps,
        PH=ph, PW=pw, PWR=pwr, HC=_chunk(ph), G=group, SPLIT_X=x.dtype != torch.bfloat16,
        num_warps=8 if ph >= 64 else 4, num_stages=2,
    )
    sums = partial.sum(0, dtype=torch.float64)[:, : w // 2 + 1, :h]  # (2, kw, kh)
    return sums[0].T, sums[1].T


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
    def _half_plane_kernel(x_ptr, out_ptr, r_hi_ptr, r_lo_ptr, w_hi_ptr, w_lo_ptr, maps, channels,
                           stride_b, stride_c, stride_h, stride_w, h, w, eps,
                           PH: tl.constexpr, PW: tl.constexpr, PWR: tl.constexpr, HC: tl.constexpr,
                           G: tl.constexpr, SPLIT_X: tl.constexpr):
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
        for start in range(pid * G, maps, programs * G):
            m = start + g
            valid = m < maps
            base = (m // channels) * stride_b + (m % channels) * stride_c
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
        tl.store(out_ptr + out, log_acc)
        tl.store(out_ptr + out + PWR * PH, pow_acc)
