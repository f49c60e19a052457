"""SPANetV2: golden outputs of the official code, timm conformance, official checkpoint layouts, probe points."""
from __future__ import annotations

import argparse
import os

import pytest
import timm
import torch
from timm.data import create_transform, resolve_data_config
from timm.optim._param_groups import param_groups_weight_decay
from torchvision import transforms

from freqlens.lens.probes import default_probe_points
from cli_checks import invoke
from freqlens.models import spanetv2 as sp
from golden import (
    assert_output_matches,
    assert_probe_maps_declared,
    assert_state_dict_matches,
    assert_weights_equal,
    det_fill_,
    det_input,
    golden_dtype,
    golden_input,
    golden_variants,
    load_golden,
    rel_err,
)

TINY = ["test_spanetv2_pure", "test_spanetv2_hybrid"]
TINY_DIMS = [32, 64, 96, 128]
TINY_HW = (64, 48)
FULL = [
    "spanetv2_s18_pure", "spanetv2_s18_hybrid", "spanetv2_s36_pure", "spanetv2_s36_hybrid",
    "spanetv2_m36_pure", "spanetv2_m36_hybrid", "spanetv2_b36_pure", "spanetv2_b36_hybrid",
]
# float64 forwards of the 36-block variants take 10-25 s each on one CPU core
HEAVY = {v for v in FULL if "36" in v}


def _tiny(name: str = "test_spanetv2_pure", **kwargs) -> sp.SPANetV2:
    model = timm.create_model(name, **kwargs)
    det_fill_(model, 0)
    return model.eval()


def _x(batch: int = 2, hw: tuple[int, int] = TINY_HW, seed: int = 0) -> torch.Tensor:
    return det_input((batch, 3, *hw), seed, torch.float32)


# --- golden ------------------------------------------------------------------------------------------


def _golden_model(variant: str) -> sp.SPANetV2:
    """Built without the random init (det_fill_ overwrites every parameter; the model has no buffers)."""
    with torch.device("meta"):
        model = timm.create_model(variant)
    return det_fill_(model.to_empty(device="cpu"), 0).eval()


@pytest.mark.parametrize(
    "variant_file",
    [pytest.param(v, marks=pytest.mark.slow) if v in HEAVY else v for v in golden_variants("spanetv2_")],
)
def test_golden(variant_file, device):
    """float64 logits of the official model; 1e-6 because its float32 FFT island rounds per FFT library."""
    golden = load_golden(variant_file)
    model = _golden_model(golden["variant"])
    assert_state_dict_matches(model, golden)
    model = model.to(device=device, dtype=golden_dtype(golden))
    with torch.no_grad():
        out = model(golden_input(golden).to(device))
    assert out.dtype == torch.float64
    assert_output_matches(out, golden, tol=1e-6)


def test_golden_variants_cover_the_zoo():
    assert golden_variants("spanetv2_") == sorted(FULL)
    assert sorted(timm.list_models("spanetv2_*")) == sorted(FULL)


def test_golden_without_float32_island_is_exact(monkeypatch):
    """Machine-independent strict check: all-float64 FFTs against the official logits made the same way."""
    golden = load_golden("spanetv2_s18_pure")
    model = _golden_model("spanetv2_s18_pure")
    monkeypatch.setattr(sp.ExSPAM, "fft_dtype", None)
    with torch.no_grad():
        out = model.double()(golden_input(golden))
    ref = torch.tensor(golden["aux"]["logits_without_float32_fft_island"], dtype=torch.float64)
    assert rel_err(out, ref) < 1e-8


def test_s18_layout():
    with torch.device("meta"):
        model = timm.create_model("spanetv2_s18_hybrid")
    assert [m["module"] for m in model.feature_info] == ["stages.0", "stages.1", "stages.2", "stages.3"]
    assert [m["num_chs"] for m in model.feature_info] == [64, 128, 320, 512]
    assert [m["reduction"] for m in model.feature_info] == [4, 8, 16, 32]
    mixers = [type(stage[0].token_mixer) for stage in model.stages]
    assert mixers == [sp.ExSPAM, sp.ExSPAM, sp.MixAttention, sp.Attention]
    assert [stage[0].token_mixer.filter_1.shape for stage in model.stages[:2]] == [(16, 56, 29), (32, 28, 15)]
    assert [model.stages[i][0].token_mixer.num_heads for i in (2, 3)] == [10, 16]
    assert [type(model.stages[i][0].res_scale1) for i in range(4)] == [torch.nn.Identity] * 2 + [sp.Scale] * 2
    assert (model.head.norm.eps, model.norm.eps, model.stages[0][0].norm1.eps) == (1e-5, 1e-6, 1e-6)


# --- ExSPAM: FFT conventions, head interleave, masks ----------------------------------------------------


def _exspam(logit: float | None = None, dim: int = 16, size: tuple[int, int] = (8, 6)) -> sp.ExSPAM:
    mixer = sp.ExSPAM(dim, size)
    det_fill_(mixer, 0)
    if logit is not None:
        with torch.no_grad():
            for k in range(4):
                getattr(mixer, f"filter_{k + 1}").fill_(logit)
    return mixer.double().eval()


def _exspam_with_spectral_path(mixer: sp.ExSPAM, x: torch.Tensor, spectral) -> torch.Tensor:
    """The mixer written per head as in the official loop, with ``spectral`` standing in for mask * FFT."""
    g = mixer.head_dim
    ctx = mixer.ctx(x).permute(0, 3, 1, 2)
    s = torch.zeros(x.shape[0], g, 4, *x.shape[1:3], dtype=x.dtype)
    for k in range(4):
        s[:, :, k] = spectral(getattr(mixer, f"local_conv_{k + 1}")(ctx[:, k * g:(k + 1) * g]))
    s = mixer.proj(s.view(x.shape[0], -1, *x.shape[1:3])).permute(0, 2, 3, 1)
    return mixer.proj_out(mixer.query(x) * s)


@pytest.mark.parametrize("hw", [(8, 6), (5, 7)])
def test_exspam_all_pass_mask_is_identity(hw):
    """sigmoid(40) == 1: the ortho rfft2 -> irfft2 round trip returns the conv output (float32 island)."""
    mixer = _exspam(logit=40.0)
    x = torch.randn(2, *hw, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), _exspam_with_spectral_path(mixer, x, lambda z: z), rtol=1e-5, atol=1e-6)


def test_exspam_dc_only_mask_is_the_spatial_mean():
    """Unshifted layout: entry [0, 0] of the half-spectrum is DC, so keeping only it leaves the mean."""
    mixer = _exspam(logit=-60.0)
    with torch.no_grad():
        for k in range(4):
            getattr(mixer, f"filter_{k + 1}")[:, 0, 0] = 60.0
    x = torch.randn(2, 8, 6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = mixer(x)
        ref = _exspam_with_spectral_path(mixer, x, lambda z: z.mean((-2, -1), keepdim=True).expand_as(z))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_exspam_heads_are_interleaved_before_the_grouped_proj():
    """Zeroing head 2's filter must silence input channels 4g+1 of proj.0 (not a contiguous block)."""
    mixer = _exspam()
    with torch.no_grad():
        mixer.filter_2.fill_(-60.0)
    seen = {}
    hook = mixer.proj[0].register_forward_pre_hook(lambda _m, args: seen.__setitem__("in", args[0]))
    with torch.no_grad():
        mixer(torch.randn(1, 8, 6, 16, dtype=torch.float64))
    hook.remove()
    energy = seen["in"].abs().amax((0, 2, 3)).view(4, 4)  # (g, head)
    assert (energy[:, 1] < 1e-20).all() and (energy[:, [0, 2, 3]] > 1e-3).all()


def test_spectral_masks_are_sigmoid_of_filters_resized_on_logits():
    mixer = _exspam(size=(8, 6))
    masks = mixer.spectral_masks((8, 6))
    assert masks.shape == (4, 4, 8, 4)
    torch.testing.assert_close(masks[2], torch.sigmoid(mixer.filter_3), rtol=0, atol=0)
    resized = mixer.spectral_masks((11, 9))
    assert resized.shape == (4, 4, 11, 5)
    logits = torch.nn.functional.interpolate(mixer.filter_1[None], size=(11, 5), mode="bicubic", align_corners=True)
    torch.testing.assert_close(resized[0], torch.sigmoid(logits[0]), rtol=0, atol=0)


def test_fft_runs_in_float32_for_float64_and_bf16(monkeypatch):
    """Official quirk 1: the FFT input is float32 whatever the model dtype."""
    seen = []
    rfft2 = torch.fft.rfft2
    monkeypatch.setattr(torch.fft, "rfft2", lambda z, **kw: seen.append(z.dtype) or rfft2(z, **kw))
    model = _tiny()
    with torch.no_grad():
        model.double()(_x().double())
        assert set(seen) == {torch.float32}
        seen.clear()
        model.float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(_x())
    assert set(seen) == {torch.float32} and torch.isfinite(out).all()


def test_fused_and_plain_attention_agree():
    model = _tiny("test_spanetv2_hybrid")
    x = _x()
    with torch.no_grad():
        fused = model(x)
        for m in model.modules():
            if isinstance(m, sp.Attention):
                m.fused_attn = False
        plain = model(x)
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)


# --- timm conformance (ecosystem.md §1.6) on the tiny variants --------------------------------------------


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("hw", [(160, 160), TINY_HW, (256, 192), (3, 5)])
def test_forward_backward_sizes(name, hw):
    model = _tiny(name).train()
    x = _x(hw=hw).requires_grad_()
    out = model(x)
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "shape", [(1, 3, 2, 64), (1, 3, 64, 2), (1, 1, 64, 64), (3, 64, 64)], ids=["h2", "w2", "1ch", "3d"]
)
def test_inputs_the_official_code_cannot_run_are_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"expects a \(B, 3, H, W\) image with H, W >= 3, got shape"):
        _tiny()(torch.zeros(shape))


def test_bad_constructor_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="img_size 16"):
        timm.create_model("test_spanetv2_pure", img_size=16)
    with pytest.raises(ValueError, match="global_pool must be 'avg' or '', got 'max'"):
        timm.create_model("test_spanetv2_pure", global_pool="max")
    with pytest.raises(ValueError, match="4 stages"):
        timm.create_model("test_spanetv2_pure", depths=(1, 1, 1), dims=(32, 64, 96))
    with pytest.raises(ValueError, match="dim 48 must be a multiple of head_dim 32"):
        sp.MixAttention(48)
    with pytest.raises(ValueError, match="dim 18 is not divisible by num_heads 4"):
        sp.ExSPAM(18, (8, 8))


@pytest.mark.parametrize("name", TINY)
def test_num_classes_zero_and_pre_logits(name):
    model = _tiny(name)
    x = _x()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert model.output_fmt == "NHWC" and feats.shape == (2, 2, 2, 128)  # 64x48: 16x12 -> 8x6 -> 4x3 -> 2x2
        pre = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pre, model.norm(feats.mean((1, 2))))
        torch.testing.assert_close(model.forward_head(feats), model(x))
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features) == (2, model.head_hidden_size) == (2, 128)
        torch.testing.assert_close(model(x), pre)
    headless = _tiny(name, num_classes=0)
    assert isinstance(headless.head, torch.nn.Identity) and headless(x).shape == (2, 128)


def test_reset_classifier():
    model = _tiny().double()
    model.reset_classifier(7)
    assert model.get_classifier().fc2.out_features == 7 and model.get_classifier().fc1.weight.dtype == torch.float64
    assert model(_x().double()).shape == (2, 7)
    model.reset_classifier(0, "")
    out = model(_x(hw=(160, 160)).double())
    assert out.shape == (2, 5, 5, 128)  # unpooled NHWC at the cfg pool_size
    assert model.pretrained_cfg["pool_size"] == (5, 5)


@pytest.mark.parametrize("name", FULL + TINY)
def test_default_cfg(name):
    cfg = timm.models.get_pretrained_cfg(name).to_dict()
    assert cfg["input_size"][0] == 3 and cfg["crop_pct"] == 1.0 and cfg["interpolation"] == "bicubic"
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert cfg["first_conv"] == "downsample_layers.0.conv" and cfg["classifier"] == "head.fc2"
    assert cfg["num_classes"] == 1000 and cfg["paper_ids"] == "arXiv:2503.23947" and cfg["license"] == "unknown"
    assert cfg["origin_url"] == "https://github.com/DoranLyong/SPANetV2-official"
    assert not cfg.get("url") and not cfg.get("hf_hub_id")
    side = cfg["input_size"][1]
    assert cfg["pool_size"] == (side // 32, side // 32)


def test_cfg_modules_and_eval_preprocessing():
    model = _tiny()
    cfg = model.pretrained_cfg
    conv = model.get_submodule(cfg["first_conv"])
    assert isinstance(conv, torch.nn.Conv2d) and conv.in_channels == 3
    fc = model.get_submodule(cfg["classifier"])
    assert isinstance(fc, torch.nn.Linear) and fc.out_features == cfg["num_classes"]
    s18_cfg = timm.models.get_pretrained_cfg("spanetv2_s18_pure").to_dict()
    steps = create_transform(**resolve_data_config({}, pretrained_cfg=s18_cfg)).transforms
    resize, crop = steps[0], steps[1]  # crop_pct 1.0: short side to 224 bicubic, centre crop 224
    assert isinstance(resize, transforms.Resize) and resize.size == 224
    assert resize.interpolation == transforms.InterpolationMode.BICUBIC
    assert isinstance(crop, transforms.CenterCrop) and crop.size == (224, 224)


@pytest.mark.parametrize("name", TINY)
def test_features_only_matches_feature_info(name):
    model = timm.create_model(name, features_only=True)
    det_fill_(model, 0)
    feats = model.eval()(_x(hw=(64, 64)))
    assert [f.shape[1] for f in feats] == model.feature_info.channels() == TINY_DIMS
    assert [64 // f.shape[-1] for f in feats] == model.feature_info.reduction() == [4, 8, 16, 32]
    picked = timm.create_model(name, features_only=True, out_indices=(1, 3))
    assert picked.feature_info.channels() == [64, 128] and len(picked(_x())) == 2


@pytest.mark.parametrize("name", TINY)
def test_forward_intermediates_match_forward_features_and_stage_outputs(name):
    model = _tiny(name)
    x = _x()
    seen = {}
    hooks = [model.get_submodule(m["module"]).register_forward_hook(
        lambda _m, _i, out, name=m["module"]: seen.__setitem__(name, out)) for m in model.feature_info]
    with torch.no_grad():
        final, inter = model.forward_intermediates(x, output_fmt="NHWC")
        nchw = model.forward_intermediates(x, intermediates_only=True)
        picked = model.forward_intermediates(x, indices=[0, 2], stop_early=True, intermediates_only=True)
        torch.testing.assert_close(final, model.forward_features(x))
    for h in hooks:
        h.remove()
    assert len(inter) == 4
    for out, out_nchw, info in zip(inter, nchw, model.feature_info):
        torch.testing.assert_close(out, seen[info["module"]])
        torch.testing.assert_close(out_nchw, out.permute(0, 3, 1, 2))
        assert out_nchw.shape[1] == info["num_chs"]
    torch.testing.assert_close(picked, [nchw[0], nchw[2]])
    with pytest.raises(ValueError, match="norm=True is not supported"):
        model.forward_intermediates(x, norm=True)
    with pytest.raises(ValueError, match="output_fmt must be 'NCHW' or 'NHWC', got 'NLC'"):
        model.forward_intermediates(x, output_fmt="NLC")


def test_prune_intermediate_layers():
    model = _tiny()
    x = _x()
    with torch.no_grad():
        expected = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    kept = model.prune_intermediate_layers(indices=[1])
    assert kept == [1] and len(model.stages) == len(model.downsample_layers) == 2 and model.num_features == 64
    with torch.no_grad():
        torch.testing.assert_close(model.forward_intermediates(x, intermediates_only=True), expected)
        assert model(x).shape == (2, 8, 6, 64)  # head and final norm pruned: unpooled NHWC of stage 1
    assert model.gradcam_target.name == "stages.1"
    assert not any(p.name.startswith("stages.2") for p in model.probe_points)


def test_grad_checkpointing_gives_the_same_gradients():
    x = _x()
    grads = []
    for enable in (False, True):
        model = _tiny().train()
        model.set_grad_checkpointing(enable)
        model(x).square().sum().backward()
        grads.append([p.grad for p in model.parameters()])
    torch.testing.assert_close(grads[1], grads[0])


def test_no_weight_decay_matches_official_training():
    """Official ``no_weight_decay() == {'norm'}`` names no parameter: only 1-D params and biases are exempt."""
    model = _tiny()
    groups = param_groups_weight_decay(model, weight_decay=0.05, no_weight_decay_list=model.no_weight_decay())
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert no_decay == {id(p) for n, p in model.named_parameters() if p.ndim <= 1 or n.endswith(".bias")}
    assert id(model.stages[0][0].token_mixer.filter_1) not in no_decay


def test_group_matcher_covers_every_parameter():
    model = _tiny()
    for coarse in (False, True):
        groups = timm.models.group_parameters(model, model.group_matcher(coarse))
        assert sum(len(names) for names in groups.values()) == len(list(model.parameters()))
        first = next(iter(groups.values()))
        assert all(n.startswith("downsample_layers.0.") for n in first)


def test_float64_matches_float32():
    model = _tiny("test_spanetv2_hybrid")
    with torch.no_grad():
        ref = model(_x())
        out = model.double()(_x().double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not os.environ.get("FREQLENS_TEST_COMPILE"), reason="slow on CPU; set FREQLENS_TEST_COMPILE=1")
@pytest.mark.parametrize("name", TINY)
def test_torch_compile(name, device):
    model = _tiny(name).to(device)
    x = _x().to(device)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-5)


def test_full_size_non_square_forward():
    """256x192 (the official hidden-input size): every ExSPAM filter is resized on the fly."""
    model = timm.create_model("spanetv2_s18_hybrid").eval()
    with torch.no_grad():
        feats = model.forward_features(_x(batch=1, hw=(256, 192)))
        assert feats.shape == (1, 8, 6, 512)
        assert model.forward_head(feats).shape == (1, 1000) and torch.isfinite(feats).all()


# --- official checkpoint layouts ------------------------------------------------------------------------


def _train_args() -> argparse.Namespace:
    """A few of timm 0.6.13 ``train.py``'s parsed arguments, as pickled in its checkpoints."""
    return argparse.Namespace(model="spanetv2_s18_pure", lr=4e-3, opt="adamw", weight_decay=0.05, epochs=300,
                              drop_path=0.2, head_dropout=0.0, native_amp=True, model_ema=False, input_size=None,
                              mean=None, std=None, device="cuda:0", world_size=32, rank=0)


def _timm_training_checkpoint(weights: dict, ema: dict | None) -> dict:
    """timm 0.6.13 ``CheckpointSaver._save``: epoch, arch, state_dict, optimizer, version, args, metric, amp_scaler."""
    params = [torch.nn.Parameter(v.clone()) for v in weights.values()]
    optimizer = torch.optim.AdamW(params, lr=4e-3, weight_decay=0.05)
    checkpoint = {"epoch": 299, "arch": "spanetv2_s18_pure", "state_dict": weights, "optimizer": optimizer.state_dict(),
                  "version": 2, "args": _train_args(), "metric": 83.4,
                  "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                 "growth_interval": 2000, "_growth_tracker": 0}}
    if ema is not None:
        checkpoint["state_dict_ema"] = ema
    return checkpoint


def _mmengine_checkpoint(weights: dict) -> dict:
    """mmdet 3 / mmseg 1 (mmengine) checkpoint: ``backbone.`` keys plus the dense ``norm0..3``, neck, heads."""
    state = {f"backbone.{k}": v for k, v in weights.items()}
    for i, dim in enumerate(TINY_DIMS):
        state[f"backbone.norm{i}.weight"] = torch.ones(dim)
    state["neck.lateral_convs.0.conv.weight"] = torch.zeros(8, 32, 1, 1)
    state["decode_head.conv_seg.weight"] = torch.zeros(150, 8, 1, 1)
    meta = {"mmengine_version": "0.10.3", "time": "20240101_000000", "epoch": 36, "iter": 87948, "seed": 0,
            "experiment_name": "mask-rcnn_spanetv2_s18_pure_3x", "dataset_meta": {"classes": ("person", "car")}}
    return {"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


LAYOUTS = {
    "released_pth": lambda w, _ema: dict(w),  # custom_ckpt.py: torch.save(ckpt['state_dict'])
    "timm_training": lambda w, _ema: _timm_training_checkpoint(w, None),
    "timm_training_ema": lambda w, ema: _timm_training_checkpoint(w, ema),
    "ddp_flat": lambda w, _ema: {f"module.{k}": v for k, v in w.items()},
    "model_container": lambda w, _ema: {"model": w, "epoch": 3},
    "mmengine_dense": lambda w, _ema: _mmengine_checkpoint(w),
}


@pytest.fixture(scope="module")
def official_weights() -> tuple[dict, dict]:
    """Official-layout weights (det-filled) and a different EMA copy."""
    model = timm.create_model("test_spanetv2_pure")
    weights = {k: v.clone() for k, v in det_fill_(model, 0).state_dict().items()}
    ema = {k: v.clone() for k, v in det_fill_(model, 1).state_dict().items()}
    return weights, ema


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_checkpoint_layouts_load_strict(layout, official_weights, tmp_path):
    weights, ema = official_weights
    path = tmp_path / "spanetv2.pth"
    torch.save(LAYOUTS[layout](weights, ema), path)
    loaded = timm.create_model("test_spanetv2_pure", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    theirs = ema if layout == "timm_training_ema" else weights  # timm's loader prefers state_dict_ema
    assert list(loaded.state_dict()) == list(theirs)
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, theirs[name]), name


def test_filter_fn_called_directly_prefers_the_raw_weights(official_weights):
    weights, ema = official_weights
    model = timm.create_model("test_spanetv2_pure")
    out = sp.checkpoint_filter_fn(_timm_training_checkpoint(weights, ema), model)
    assert all(torch.equal(out[k], weights[k]) for k in weights)


def test_checkpoint_for_another_img_size_resizes_filters_like_the_forward(official_weights, tmp_path):
    """A model built for 256x192 and loaded from the 160 px weights gives the 160 px model's outputs there."""
    weights, _ = official_weights
    path = tmp_path / "spanetv2.pth"
    torch.save(weights, path)
    model = timm.create_model("test_spanetv2_pure", img_size=(256, 192), pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path))).eval()
    assert model.stages[0][0].token_mixer.filter_1.shape == (8, 64, 25)
    reference = _tiny()
    x = _x(batch=1, hw=(256, 192))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-6, atol=1e-6)


def test_pretrained_with_other_num_classes_keeps_the_backbone(official_weights, tmp_path):
    weights, _ = official_weights
    path = tmp_path / "spanetv2.pth"
    torch.save(weights, path)
    model = timm.create_model("test_spanetv2_pure", pretrained=True, num_classes=7,
                              pretrained_cfg_overlay=dict(file=str(path)))
    assert model.head.fc2.out_features == 7
    assert torch.equal(model.stages[3][0].token_mixer.filter_4, weights["stages.3.0.token_mixer.filter_4"])


# --- lens readiness -------------------------------------------------------------------------------------


def test_probe_points_of_s18_pure():
    with torch.device("meta"):
        model = timm.create_model("spanetv2_s18_pure")
    names = [p.name for p in model.probe_points]
    assert len(names) == len(set(names)) == 4 + 4 + 18 * 4
    for point in model.probe_points:
        model.get_submodule(point.name)
    assert [(p.name, p.reduction) for p in model.probe_points if p.kind == "stage"] == [
        ("stages.0", 4), ("stages.1", 8), ("stages.2", 16), ("stages.3", 32)]
    downsample = [p.name for p in model.probe_points if p.kind == "downsample"]
    assert downsample == [f"downsample_layers.{i}" for i in range(4)]
    assert {p.layout for p in model.probe_points if p.kind == "freq"} == {"NCHW"}
    assert {p.layout for p in model.probe_points if p.kind != "freq"} == {"NHWC"}
    assert model.gradcam_target.name == "stages.3" and model.gradcam_target.layout == "NHWC"
    assert default_probe_points(model, (3, 224, 224)) == model.probe_points


@pytest.mark.parametrize("name", TINY)
def test_probe_points_produce_the_declared_maps(name):
    model = _tiny(name)
    shapes = assert_probe_maps_declared(model, _x(hw=(64, 64)))
    assert shapes[model.gradcam_target.name][1] == (2, 128, 2, 2)
    kinds = {p.kind for p, _ in shapes.values()}
    assert kinds == ({"downsample", "query", "freq", "mixer", "block", "stage"})


def test_gradcam_on_the_declared_target():
    """demo_cam.py's target (``stages[-1]``, NHWC -> NCHW) through freqlens' Grad-CAM wrapper."""
    from freqlens.reports.gradcam import gradcam

    model = _tiny()
    result = gradcam(model, _x(hw=(64, 64)), classes=3)
    assert result.target == model.gradcam_target
    assert result.maps.shape == (2, 64, 64) and torch.isfinite(result.raw).all()
    assert float(result.raw.std()) > 0 and not model.training


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_layouts_load_through_freqlens_loader(layout, official_weights, tmp_path):
    """The path of ``freqlens spectrum --ckpt``: explicit model weights (never silently EMA), strict."""
    from freqlens.loading import load_model

    weights, ema = official_weights
    path = tmp_path / "spanetv2.pth"
    torch.save(LAYOUTS[layout](weights, ema), path)
    loaded = load_model("test_spanetv2_pure", path)
    assert_weights_equal(loaded.model, weights)


def test_spectrum_cli_loads_an_official_checkpoint(official_weights, tmp_path):
    path = tmp_path / "spanetv2_training.pth"
    torch.save(_timm_training_checkpoint(*official_weights), path)
    result = invoke("spectrum", "--model", "test_spanetv2_pure", "--ckpt", str(path), "--limit", "1",
                    "--device", "cpu", "--quiet", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "results.json").is_file()
