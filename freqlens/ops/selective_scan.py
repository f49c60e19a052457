"""The selective scan of Mamba / VMamba (the S6 recurrence) in pure PyTorch.

Semantics and layouts are those of the CUDA extensions ``selective_scan_cuda`` (Mamba),
``selective_scan_cuda_oflex`` (VMamba, fp32 output) and ``selective_scan_cuda_oflex_rh`` (Spatial-Mamba,
which returns the hidden states instead of y). For batch b, channel d (group g = d // (KD / K)),
state n and t = 0..L-1, with h_{-1} = 0::

    delta_t = delta[b, d, t] + delta_bias[d]
    delta_t = softplus(delta_t)                    if delta_softplus (threshold 20, like the kernels)
    h_t[n]  = exp(delta_t * A[d, n]) * h_{t-1}[n] + B[b, g, n, t] * (delta_t * u[b, d, t])
    y_t     = sum_n C[b, g, n, t] * h_t[n] + D[d] * u[b, d, t]

Arithmetic is float32 (float64 when any input is float64), also under autocast, and the outputs are in
that dtype, as in the "oflex" kernels with ``out_float=True``. Two backends compute the same function:
``reference`` runs the recurrence step by step (vectorised over everything but L) and ``fast`` runs an
exact pairwise (associative) scan in chunks, which needs O(log L) tensor operations instead of O(L).
Both are differentiable through autograd.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["selective_scan"]

_BACKENDS = ("auto", "reference", "fast")
# Chunk length of the fast backend: the within-chunk scan costs log2(_CHUNK) full-size passes.
_CHUNK = 64


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor | None,
    D: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_hidden: bool = False,
    backend: str = "auto",
) -> Tensor | tuple[Tensor | None, Tensor]:
    """Run the selective scan.

    Args:
        u: input, (batch, K*D, L).
        delta: step sizes before bias/softplus, (batch, K*D, L).
        A: state matrix (real, diagonal), (K*D, N).
        B: input projection, (batch, K, N, L) or (batch, N, L) (one group).
        C: output projection, same layout as B; may be None with ``return_hidden=True``
            (then y is None: the ``oflex_rh`` kernel of Spatial-Mamba computes only the states).
        D: skip weights, (K*D,), or None.
        delta_bias: added to delta before the softplus, (K*D,), or None.
        delta_softplus: apply softplus (threshold 20) to delta.
        return_hidden: also return every hidden state h, (batch, K*D, N, L).
        backend: "reference" (sequential), "fast" (chunked associative scan) or "auto"
            (reference on CPU, fast elsewhere).

    Returns:
        y (batch, K*D, L), or (y, h) with ``return_hidden``; float32, or float64 when an input is.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if C is None and not return_hidden:
        raise ValueError("C=None computes no output; pass C or return_hidden=True")
    batch, channels, length, groups, n_state = _check_shapes(u, delta, A, B, C, D, delta_bias)
    if backend == "auto":
        backend = "reference" if u.device.type == "cpu" else "fast"
    tensors = [t for t in (u, delta, A, B, C, D, delta_bias) if t is not None]
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32

    # The kernels compute in fp32 whatever the input dtype: keep autocast out of the scan.
    with torch.autocast(device_type=u.device.type, enabled=False):
        u, delta, A = u.to(dtype), delta.to(dtype), A.to(dtype)
        if delta_bias is not None:
            delta = delta + delta_bias.to(dtype)[:, None]
        if delta_softplus:
            delta = F.softplus(delta)  # identity above 20, log1p(exp(x)) below: as the kernels
        per_group = channels // groups
        # Grouped views: channel d = g * per_group + i.
        delta_g = delta.view(batch, groups, per_group, 1, length)
        decay = torch.exp(delta_g * A.view(1, groups, per_group, n_state, 1))
        drive = (delta_g * u.view(batch, groups, per_group, 1, length)) * _grouped(B, dtype)[:, :, None]
        decay = decay.reshape(batch, channels, n_state, length)
        drive = drive.reshape(batch, channels, n_state, length)
        scan = _scan_sequential if backend == "reference" else _scan_chunked
        h = scan(decay, drive)

        y = None
        if C is not None:
            hg = h.view(batch, groups, per_group, n_state, length)
            y = (hg * _grouped(C, dtype)[:, :, None]).sum(3).reshape(batch, channels, length)
            if D is not None:
                y = y + D.to(dtype)[:, None] * u
    return (y, h) if return_hidden else y


def _grouped(x: Tensor, dtype: torch.dtype) -> Tensor:
    """B or C as (batch, K, N, L) in the compute dtype."""
    return (x if x.dim() == 4 else x[:, None]).to(dtype)


def _check_shapes(u, delta, A, B, C, D, delta_bias) -> tuple[int, int, int, int, int]:
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, K*D, L), got shape {tuple(u.shape)}")
    batch, channels, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must have u's shape {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != channels:
        raise ValueError(f"A must be (K*D={channels}, N), got shape {tuple(A.shape)}")
    n_state = A.shape[1]
    if B.dim() not in (3, 4):
        raise ValueError(f"B must be (batch, K, N, L) or (batch, N, L), got shape {tuple(B.shape)}")
    groups = B.shape[1] if B.dim() == 4 else 1
    if channels % groups:
        raise ValueError(f"K*D={channels} channels cannot be split into K={groups} groups of B")
    expected = (batch, groups, n_state, length) if B.dim() == 4 else (batch, n_state, length)
    for name, x in (("B", B), ("C", C)):
        if x is not None and tuple(x.shape) != expected:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    for name, x in (("D", D), ("delta_bias", delta_bias)):
        if x is not None and tuple(x.shape) != (channels,):
            raise ValueError(f"{name} must have shape ({channels},), got {tuple(x.shape)}")
    return batch, channels, length, groups, n_state


@torch.compiler.disable  # an L-step Python loop: never unroll it into a compiled graph
def _scan_sequential(decay: Tensor, drive: Tensor) -> Tensor:
    """h_t = decay_t * h_{t-1} + drive_t along the last dim, one step at a time (exact order of the kernels)."""
    # drive needs no contiguous copy: _recurrence's clone makes the one contiguous buffer it steps in
    h = _SequentialScan.apply(decay.movedim(-1, 0).contiguous(), drive.movedim(-1, 0))
    return h.movedim(0, -1)


class _SequentialScan(torch.autograd.Function):
    """The step-by-step recurrence over dim 0, with its backward as the same recurrence run in reverse.

    In-place steps on one buffer avoid a tensor per step, which autograd would need otherwise.
    """

    @staticmethod
    def forward(ctx, decay: Tensor, drive: Tensor) -> Tensor:
        h = _recurrence(decay, drive)
        ctx.save_for_backward(decay, h)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h: Tensor) -> tuple[Tensor, Tensor]:
        decay, h = ctx.saved_tensors
        # g_t = dL/dh_t + decay_{t+1} g_{t+1}; then dL/ddrive_t = g_t and dL/ddecay_t = g_t h_{t-1}.
        next_decay = torch.cat([decay[1:], torch.zeros_like(decay[:1])])
        g = _recurrence(next_decay.flip(0), grad_h.flip(0)).flip(0)
        grad_decay = torch.cat([torch.zeros_like(h[:1]), g[1:] * h[:-1]])
        return grad_decay, g


def _recurrence(decay: Tensor, drive: Tensor) -> Tensor:
    out = drive.clone(memory_format=torch.contiguous_format)
    steps, decays = out.unbind(0), decay.unbind(0)
    for t in range(1, len(steps)):
        steps[t].addcmul_(decays[t], steps[t - 1])
    return out


def _scan_chunked(decay: Tensor, drive: Tensor) -> Tensor:
    """The same recurrence as a two-level pairwise scan: within chunks, then across chunk ends.

    Only products of decays (all in [0, 1] for A <= 0) are formed, never their inverses, so it is
    stable for any step size, unlike a cumsum-of-logs closed form.
    """
    length = decay.shape[-1]
    chunk = min(_CHUNK, 1 << (length - 1).bit_length())
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    if pad:  # identity elements (1, 0) after the end
        decay = F.pad(decay, (0, pad), value=1.0)
        drive = F.pad(drive, (0, pad))
    decay, h = _doubling_scan(decay.unflatten(-1, (n_chunks, chunk)), drive.unflatten(-1, (n_chunks, chunk)))
    if n_chunks > 1:
        _, ends = _doubling_scan(decay[..., -1], h[..., -1])
        carry = F.pad(ends[..., :-1], (1, 0))  # state entering each chunk
        h = torch.addcmul(h, decay, carry[..., None])
    return h.flatten(-2)[..., :length]


def _doubling_scan(decay: Tensor, drive: Tensor) -> tuple[Tensor, Tensor]:
    """Inclusive scan of (decay, drive) pairs along the last dim in log2 steps (Hillis-Steele).

    Returns the cumulative decay products and the states from a zero initial state.
    """
    length = decay.shape[-1]
    step = 1
    while step < length:
        later = torch.addcmul(drive[..., step:], decay[..., step:], drive[..., :-step])
        drive = torch.cat([drive[..., :step], later], -1)
        decay = torch.cat([decay[..., :step], decay[..., step:] * decay[..., :-step]], -1)
        step *= 2
    return decay, drive
