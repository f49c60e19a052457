"""Known answers for the selective scan and agreement of its two backends."""
from __future__ import annotations

import math

import pytest
import torch

from freqlens.ops.selective_scan import selective_scan


def _inputs(batch=2, groups=2, per_group=3, n_state=2, length=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = groups * per_group

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale)

    return dict(
        u=rnd(batch, channels, length),
        delta=rnd(batch, channels, length, scale=0.5),
        A=-torch.rand(channels, n_state, generator=g, dtype=dtype) * 2,
        B=rnd(batch, groups, n_state, length),
        C=rnd(batch, groups, n_state, length),
        D=rnd(channels),
        delta_bias=rnd(channels, scale=0.5),
    )


def _naive(u, delta, A, B, C, D, delta_bias):
    """Scalar loops straight from the kernel's definition (softplus applied)."""
    batch, channels, length = u.shape
    groups, n_state = B.shape[1], A.shape[1]
    y = torch.zeros(batch, channels, length, dtype=torch.float64)
    h_all = torch.zeros(batch, channels, n_state, length, dtype=torch.float64)
    for b in range(batch):
        for d in range(channels):
            g = d // (channels // groups)
            for n in range(n_state):
                h = 0.0
                for t in range(length):
                    dt = float(delta[b, d, t] + delta_bias[d])
                    dt = math.log1p(math.exp(dt)) if dt <= 20 else dt
                    h = math.exp(dt * float(A[d, n])) * h + float(B[b, g, n, t]) * dt * float(u[b, d, t])
                    h_all[b, d, n, t] = h
                    y[b, d, t] += float(C[b, g, n, t]) * h
            y[b, d] += float(D[d]) * u[b, d]
    return y, h_all


def test_zero_decay_gives_cumulative_sums():
    u = torch.arange(1.0, 7.0).view(1, 1, 6)
    ones = torch.ones(1, 1, 1, 6)
    y = selective_scan(u, torch.ones_like(u), torch.zeros(1, 1), ones, ones, backend="reference")
    assert y.tolist() == [[[1.0, 3.0, 6.0, 10.0, 15.0, 21.0]]]


def test_halving_decay_from_an_impulse():
    u = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
    ones = torch.ones(1, 1, 1, 4)
    Bs = torch.full((1, 1, 1, 4), 3.0)
    y, h = selective_scan(u, torch.ones_like(u), torch.full((1, 1), -math.log(2.0)), Bs, ones,
                          D=torch.tensor([10.0]), return_hidden=True, backend="reference")
    torch.testing.assert_close(h[0, 0, 0], torch.tensor([3.0, 1.5, 0.75, 0.375]))
    torch.testing.assert_close(y[0, 0], torch.tensor([13.0, 1.5, 0.75, 0.375]))


def test_softplus_threshold_and_bias():
    u = torch.ones(1, 2, 1)
    ones = torch.ones(1, 1, 1, 1)
    delta = torch.tensor([[[25.0], [-1.0]]])
    y = selective_scan(u, delta, torch.zeros(2, 1), ones, ones, delta_bias=torch.tensor([0.0, 1.0]),
                       delta_softplus=True, backend="reference")
    assert y[0, 0, 0].item() == 25.0  # above the threshold softplus is the identity
    assert y[0, 1, 0].item() == pytest.approx(math.log(2.0), rel=1e-7)  # softplus(-1 + 1)


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_matches_scalar_loops_with_groups(backend):
    x = _inputs(length=7)
    y_ref, h_ref = _naive(**x)
    y, h = selective_scan(**x, delta_softplus=True, return_hidden=True, backend=backend)
    assert h.shape == (2, 6, 2, 7) and y.dtype == torch.float64
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-12, atol=1e-12)


def test_reference_gradcheck_float64():
    x = {k: v.requires_grad_() for k, v in _inputs(batch=1, groups=2, per_group=1, length=4).items()}
    assert torch.autograd.gradcheck(
        lambda *a: selective_scan(*a, delta_softplus=True, backend="reference"),
        (x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["delta_bias"]),
    )


@pytest.mark.parametrize("length", [1, 3, 64, 150])
def test_fast_matches_reference_float32(length, device):
    x = {k: v.float().to(device).requires_grad_() for k, v in _inputs(length=length, n_state=1, seed=length).items()}
    out = {}
    for backend in ("reference", "fast"):
        y, h = selective_scan(**x, delta_softplus=True, return_hidden=True, backend=backend)
        grads = torch.autograd.grad((y * torch.cos(y)).sum() + h.sum(), list(x.values()), materialize_grads=True)
        out[backend] = (y, h, grads)
    y_r, h_r, g_r = out["reference"]
    y_f, h_f, g_f = out["fast"]
    torch.testing.assert_close(y_f, y_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_f, h_r, rtol=1e-5, atol=1e-5)
    for name, a, b in zip(x, g_f, g_r):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=lambda m: f"grad of {name}: {m}")


def test_fast_is_stable_for_strong_decay(device):
    # A cumsum-of-logs closed form would overflow here (exp(+2000)); the pairwise scan must not.
    x = {k: v.to(device) for k, v in _inputs(length=200, n_state=1, dtype=torch.float32).items()}
    x["A"] = torch.full_like(x["A"], -100.0)
    x["delta"] = x["delta"].abs() + 1.0
    y_f = selective_scan(**x, backend="fast")
    y_r = selective_scan(**x, backend="reference")
    assert torch.isfinite(y_f).all()
    torch.testing.assert_close(y_f, y_r, rtol=1e-5, atol=1e-5)


def test_half_inputs_compute_in_float32_under_autocast(device):
    x = {k: v.to(device) for k, v in _inputs(n_state=1, dtype=torch.float32).items()}
    ref = selective_scan(**{k: v.bfloat16().float() if k in ("u", "delta", "B", "C") else v for k, v in x.items()})
    low = {k: v.bfloat16() if k in ("u", "delta", "B", "C") else v for k, v in x.items()}
    with torch.autocast(device.type, dtype=torch.bfloat16):
        y, h = selective_scan(**low, return_hidden=True)
    assert y.dtype == h.dtype == torch.float32
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


def test_states_only_and_three_dim_B():
    x = _inputs(groups=1, n_state=1)
    y_full, h_full = selective_scan(**x, return_hidden=True)
    y, h = selective_scan(x["u"], x["delta"], x["A"], x["B"][:, 0], None, delta_bias=x["delta_bias"],
                          return_hidden=True)
    assert y is None
    torch.testing.assert_close(h, h_full, rtol=0, atol=0)


def test_auto_is_reference_on_cpu_and_fast_elsewhere(device):
    x = {k: v.to(device) for k, v in _inputs(length=70, dtype=torch.float32).items()}
    expected = "reference" if device.type == "cpu" else "fast"
    assert torch.equal(selective_scan(**x), selective_scan(**x, backend=expected))


def test_errors_name_the_bad_value():
    x = _inputs()
    with pytest.raises(ValueError, match="backend"):
        selective_scan(**x, backend="cuda")
    with pytest.raises(ValueError, match="return_hidden"):
        selective_scan(**{**x, "C": None})
    with pytest.raises(ValueError, match="C must have shape"):
        selective_scan(**{**x, "C": x["C"][..., :-1]})
    with pytest.raises(ValueError, match="groups"):
        selective_scan(**{**x, "B": x["B"].repeat(1, 2, 1, 1)[:, :4], "C": x["C"].repeat(1, 2, 1, 1)[:, :4]})
