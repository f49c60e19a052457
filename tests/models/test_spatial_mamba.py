"""Spatial-Mamba: golden outputs of the official code, fusion semantics, gradients, timm conformance."""
from __future__ import annotations

import sys

import pytest
import timm
import torch
import torch.nn.functional as F

from freqlens import Lens
from freqlens.models.spatial_mamba import StateFusion, checkpoint_filter_fn
from golden import (
    assert_output_matches,
    assert_state_dict_matches,
    assert_weights_equal,
    det_fill_,
    golden_dtype,
    golden_input,
    golden_variants,
    install_fake_yacs,
    load_golden,
    rel_err,
)

GOLDENS = golden_variants("spatialmamba_")
TINY = dict(depths=(1, 1, 2, 1), dims=8, num_classes=10)


def _tiny(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("spatialmamba_t", **{**TINY, **kwargs}).eval()
    return det_fill_(model, 0)


def _check_sampled(name: str, feat: torch.Tensor, ref: dict, tol: float) -> None:
    feat = feat.detach().to(torch.float64)
    assert list(feat.shape) == ref["shape"], f"{name}: shape {list(feat.shape)} vs {ref['shape']}"
    samples = feat.flatten()[torch.tensor(ref["sample_flat_index"])]
    expected = torch.tensor(ref["sample_values"], dtype=torch.float64)
    err = rel_err(samples, expected)
    assert err < tol, f"{name}: sampled values relative error {err:.2e}"
    for stat, value in (("mean", feat.mean()), ("std", feat.std()), ("max", feat.max())):
        bound = tol * max(abs(ref[stat]), ref["std"])
        assert abs(float(value) - ref[stat]) <= bound, f"{name}: {stat} {float(value)} vs {ref[stat]}"


def test_goldens_exist():
    assert GOLDENS == ["spatialmamba_b", "spatialmamba_s", "spatialmamba_t"]


@pytest.mark.parametrize("variant", [
    pytest.param(v, marks=pytest.mark.slow) if v != "spatialmamba_t" else v for v in GOLDENS  # S, B: 20-70 s each
])
def test_golden(variant, device):
    golden = load_golden(variant)
    model = timm.create_model(variant)  # scan backend "auto": reference on CPU, fast on CUDA
    assert_state_dict_matches(model, golden)
    model.eval()
    det_fill_(model, 0)
    dtype = golden_dtype(golden)
    model.to(device=device, dtype=dtype)
    # Intermediates recorded with the golden: first fusion's input/output, each stage's last block.
    inter = golden["aux"]["intermediates"]
    mixer = "layers.0.blocks.0.self_attention"
    points = {f"{mixer}.scan": f"{mixer}.state_fusion_input_NCHW",
              f"{mixer}.state_fusion": f"{mixer}.state_fusion_output_NCHW"}
    points.update({info["module"]: f"stage{i}_last_block_out_NHWC" for i, info in enumerate(model.feature_info)})
    seen = {}
    hooks = [model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
             for name in points]
    with torch.no_grad():
        output = model(golden_input(golden).to(device))
    for h in hooks:
        h.remove()
    assert output.dtype == dtype
    assert_output_matches(output, golden, tol=1e-8)
    for name, key in points.items():
        _check_sampled(key, seen[name].cpu(), inter[key], tol=1e-8)


def _naive_fusion(fusion: StateFusion, h: torch.Tensor) -> torch.Tensor:
    """The official eval path: merged 11x11 kernel, dense cross-correlation over a replicate pad of 5."""
    kernel = torch.zeros(fusion.dim, 1, 11, 11, dtype=h.dtype)
    for alpha, k, d in zip(fusion.alpha, (fusion.kernel_3, fusion.kernel_3_1, fusion.kernel_3_2), (1, 3, 5)):
        for p in range(3):
            for q in range(3):
                kernel[:, 0, 5 + d * (p - 1), 5 + d * (q - 1)] += alpha * k[:, 0, p, q]
    return F.conv2d(F.pad(h, (5,) * 4, mode="replicate"), kernel, groups=fusion.dim)


@pytest.mark.parametrize("hw", [(7, 9), (3, 2), (1, 1)])
def test_fusion_is_official_merged_kernel_with_replicate_padding(hw):
    fusion = det_fill_(StateFusion(4), 0).double()
    h = torch.randn(2, 4, *hw, dtype=torch.float64)
    with torch.no_grad():
        ours, ref = fusion(h), _naive_fusion(fusion, h)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    # Replicate, not zero padding: a constant map stays constant times the sum of all taps.
    ones = torch.ones(1, 4, *hw, dtype=torch.float64)
    kernels = (fusion.kernel_3, fusion.kernel_3_1, fusion.kernel_3_2)
    total = sum(a * k.sum((1, 2, 3)) for a, k in zip(fusion.alpha, kernels))
    torch.testing.assert_close(fusion(ones).detach(), total.detach().view(1, 4, 1, 1).expand(1, 4, *hw))


def test_fusion_uses_current_weights_after_eval_forward():
    # The official eval path caches the merged kernel at the first eval forward; ours must not.
    model = _tiny()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        model.layers[0].blocks[0].self_attention.state_fusion.alpha.mul_(3.0)
        after = model(x)
        fresh = _tiny()
        fresh.load_state_dict(model.state_dict())
        expected = fresh(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)


def test_input_gradient_in_eval_mode(device):
    model = _tiny().to(device)
    x = torch.randn(1, 3, 64, 64, device=device, requires_grad=True)
    model(x)[0, 3].backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    fusion = model.layers[0].blocks[0].self_attention.state_fusion
    assert fusion.alpha.grad is not None and fusion.kernel_3_2.grad.abs().sum() > 0


def test_fast_scan_backend_matches_reference(device):
    x = torch.randn(2, 3, 96, 64, device=device)
    ref = _tiny(scan_backend="reference").to(device)
    fast = _tiny(scan_backend="fast").to(device)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(256, 192), (97, 65), (32, 32)])
def test_non_224_inputs(size, device):
    model = _tiny().to(device)
    x = torch.randn(1, 3, *size, device=device)
    feats = model.forward_intermediates(x, intermediates_only=True)
    expected = [size]
    for _ in range(5):
        expected.append(tuple(-(-s // 2) for s in expected[-1]))  # stride-2, padding 1: ceil-halving
    assert [tuple(f.shape[-2:]) for f in feats] == expected[2:]
    assert model(x).shape == (1, 10)


def test_bf16_autocast_keeps_scan_and_fusion_in_float32(device):
    model = _tiny().to(device)
    seen = {}
    for name in ("scan", "state_fusion"):
        model.layers[0].blocks[0].self_attention.get_submodule(name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o.dtype))
    x = torch.randn(1, 3, 64, 64, device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        out = model(x)
    assert seen == {"scan": torch.float32, "state_fusion": torch.float32}
    with torch.no_grad():
        ref = model(x)
    assert torch.isfinite(out).all()
    assert rel_err(out, ref) < 0.1


def test_d_state_other_than_one_is_rejected():
    with pytest.raises(ValueError, match="d_state=1"):
        timm.create_model("spatialmamba_t", d_state=16)


def test_probe_points_and_gradcam_target():
    model = _tiny()
    modules = dict(model.named_modules())
    assert all(p.name in modules for p in model.probe_points)
    assert model.gradcam_target.name == "layers.3.blocks.0" and model.gradcam_target.layout == "NHWC"
    names = ["layers.2.blocks.1.self_attention.scan", "layers.2.blocks.1.self_attention.state_fusion",
             "layers.2.blocks.1", "layers.0.downsample"]
    points = [p for p in model.probe_points if p.name in names]
    shapes = {}
    with Lens(model, points, lambda point, feat: shapes.__setitem__(point.name, tuple(feat.shape))):
        model(torch.randn(1, 3, 64, 64))
    assert shapes == {names[0]: (1, 64, 4, 4), names[1]: (1, 64, 4, 4), names[2]: (1, 32, 4, 4),
                      names[3]: (1, 16, 8, 8)}


def test_timm_conformance():
    model = _tiny()
    x = torch.randn(2, 3, 64, 64)
    cfg = model.pretrained_cfg
    for key in ("input_size", "crop_pct", "interpolation", "mean", "std", "first_conv", "classifier", "license"):
        assert key in cfg, key
    assert model.get_submodule(cfg["first_conv"]).in_channels == 3
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(feats), logits)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features)
        final, inter = model.forward_intermediates(x)
        torch.testing.assert_close(final, feats)
        assert [f.shape[1] for f in inter] == [8, 16, 32, 64]
        model.set_grad_checkpointing()
        torch.testing.assert_close(model.forward_intermediates(x)[0], feats)
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pre)
        model.reset_classifier(5, "")
        assert model(x).shape == (2, 2, 2, 5)
    headless = timm.create_model("spatialmamba_t", **{**TINY, "num_classes": 0})
    assert headless(x).shape == (2, 64)
    assert timm.create_model("spatialmamba_t", **TINY, in_chans=1).eval()(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_features_only_matches_feature_info():
    torch.manual_seed(0)
    model = timm.create_model("spatialmamba_t", features_only=True, out_indices=(1, 3), **TINY)
    feats = model(torch.randn(1, 3, 64, 64))
    assert model.feature_info.channels() == [16, 64] and model.feature_info.reduction() == [8, 32]
    assert [tuple(f.shape) for f in feats] == [(1, 16, 8, 8), (1, 64, 2, 2)]
    pruned = timm.create_model("spatialmamba_t", features_only=True, out_indices=(0, 1), **TINY)
    assert len(pruned.model.layers) == 2 and [f.shape[1] for f in pruned(torch.randn(1, 3, 32, 32))] == [8, 16]


@pytest.mark.slow
def test_torch_compile_fullgraph_with_fast_scan(device):
    # The reference scan is a Python loop over L and is kept out of graphs (torch.compiler.disable).
    model = _tiny(scan_backend="fast").to(device)
    x = torch.randn(1, 3, 32, 32, device=device)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


def test_dense_backbone_out_norms():
    # Backbone_SpatialMamba: output i = outnorm{i}(stage i's last block output), NCHW.
    model = _tiny(out_norms=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        raw = model.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
        normed = model.forward_intermediates(x, norm=True, intermediates_only=True)
    for i, (r, n) in enumerate(zip(raw, normed)):
        torch.testing.assert_close(n, model.get_submodule(f"outnorm{i}")(r).permute(0, 3, 1, 2))
    assert "outnorm3.weight" in model.state_dict() and "outnorm0.weight" not in _tiny().state_dict()


def test_backward_at_default_size(device):
    model = _tiny().train().to(device)
    model(torch.randn(2, 3, 224, 224, device=device)).logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def _fake_yacs_config(monkeypatch) -> dict:
    """The official `config` entry, a ``yacs.config.CfgNode`` (yacs absent here)."""
    cfg_node = install_fake_yacs(monkeypatch)
    return cfg_node(MODEL=cfg_node(TYPE="spatialmamba", NAME="spatialmamba_tiny"))


def test_official_checkpoint_layouts_load(tmp_path, monkeypatch):
    source = _tiny()
    ema = _tiny()
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(1.0)
    ckpt = {"model": source.state_dict(), "model_ema": ema.state_dict(), "epoch": 299, "max_accuracy": 83.5,
            "config": _fake_yacs_config(monkeypatch)}
    # Our filter: `model` by default, `model_ema` on request, DDP and mmseg prefixes.
    target = _tiny()
    for use_ema, ref in ((False, source), (True, ema)):
        target.load_state_dict(checkpoint_filter_fn(ckpt, target, use_ema=use_ema), strict=True)
        assert_weights_equal(target, ref.state_dict())
    ddp = {"model": {f"module.{k}": v for k, v in source.state_dict().items()}}
    target.load_state_dict(checkpoint_filter_fn(ddp, target), strict=True)
    trunk = {k: v for k, v in source.state_dict().items() if not k.startswith(("norm.", "head."))}
    mmseg = {"state_dict": {**{f"backbone.{k}": v for k, v in trunk.items()},
                            "backbone.outnorm0.weight": torch.ones(8), "decode_head.conv_seg.weight": torch.ones(1)}}
    assert set(checkpoint_filter_fn(mmseg, target)) == set(trunk)
    dense = _tiny(num_classes=0, out_norms=True)
    missing, unexpected = dense.load_state_dict(checkpoint_filter_fn(mmseg, dense), strict=False)
    assert not unexpected and set(missing) == {"norm.weight", "norm.bias", "outnorm0.bias",
                                               *[f"outnorm{i}.{w}" for i in (1, 2, 3) for w in ("weight", "bias")]}
    with pytest.raises(ValueError, match="model_ema"):
        checkpoint_filter_fn({"model": source.state_dict()}, target, use_ema=True)
    # Through timm: the file loader picks `model_ema` when present (timm's own rule), then our filter.
    path = tmp_path / "ckpt.pth"
    torch.save(ckpt, path)
    monkeypatch.delitem(sys.modules, "yacs.config")  # loading must not need yacs
    overlay = dict(file=str(path), num_classes=10)
    loaded = timm.create_model("spatialmamba_t", pretrained=True, pretrained_cfg_overlay=overlay, **TINY)
    assert_weights_equal(loaded, ema.state_dict())
    torch.save({"model": source.state_dict()}, path)
    loaded = timm.create_model("spatialmamba_t", pretrained=True, pretrained_cfg_overlay=overlay, **TINY)
    assert_weights_equal(loaded, source.state_dict())
