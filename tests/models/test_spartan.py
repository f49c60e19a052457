"""SpaRTAN: golden outputs of the official code, timm conformance, official checkpoint layouts, probe points."""
from __future__ import annotations

import collections
import sys
import types
import typing

import pytest
import timm
import torch
from timm.data import create_transform, resolve_data_config
from timm.optim._param_groups import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler
from torchvision import transforms

from freqlens.io.standins import DictConfigStandIn, to_plain
from freqlens.models.spartan import SpaRTAN, WaveModulation, checkpoint_filter_fn
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

# A tiny SpaRTAN for the conformance checks: four stages, so both conv-grouping regimes appear.
TINY = dict(depths=(1, 1, 2, 1), dims=(16, 16, 32, 32), expand_ratios=(4, 2, 2, 2), num_classes=10)
TINY_HW = (64, 48)

# ``src/config/model/spartan.yaml`` ``build:`` (the official constructor kwargs of spartan_t)
OFFICIAL_BUILD = dict(num_layer=4, layer_depths=[3, 3, 12, 2], expand_ratios=[4, 4, 2, 2], dims=[64, 128, 256],
                      dropout=0.1, init_dim=32)


def _tiny(**kwargs) -> SpaRTAN:
    model = timm.create_model("spartan_t", **dict(TINY, **kwargs))
    det_fill_(model, 0)
    return model.eval()


def _x(batch: int = 2, hw: tuple[int, int] = TINY_HW, seed: int = 0) -> torch.Tensor:
    return det_input((batch, 3, *hw), seed, torch.float32)


# --- golden ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant_file", golden_variants("spartan"))
def test_golden(variant_file, device):
    golden = load_golden(variant_file)
    model = timm.create_model(golden["variant"]).eval()
    assert_state_dict_matches(model, golden)
    det_fill_(model, 0)
    dtype = golden_dtype(golden)
    model = model.to(device=device, dtype=dtype)
    with torch.no_grad():  # TF32 is off for every test (conftest)
        out = model(golden_input(golden).to(device))
    assert_output_matches(out, golden, tol=1e-4)


def test_golden_in_float64_stays_within_float32_tolerance():
    """The float64 path (complex product in float64: a documented deviation) lands on the float32 golden."""
    golden = load_golden("spartan_t")
    model = timm.create_model("spartan_t").eval()
    det_fill_(model, 0)
    with torch.no_grad():
        out = model.double()(golden_input(golden).double())
    assert out.dtype == torch.float64
    assert_output_matches(out, golden, tol=1e-5)


def test_spartan_t_layout():
    model = timm.create_model("spartan_t")
    assert sum(p.numel() for p in model.parameters()) == 3_820_296
    assert [m["module"] for m in model.feature_info] == ["layers.2", "layers.6", "layers.19", "layers.22"]
    assert [m["num_chs"] for m in model.feature_info] == [32, 64, 128, 256]
    assert [m["reduction"] for m in model.feature_info] == [4, 8, 16, 32]
    # drop path of block k is 0.1 * k / 20 (official), identity for block 0
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in model.layers if hasattr(b, "drop_path")]
    assert rates == pytest.approx([0.1 * k / 20 for k in range(20)])
    # conv groups: SMixer full then depthwise; CMixer depthwise (N groups) then C groups
    assert model.layers[0].smixer.h_conv.conv.groups == 1 and model.layers[0].cmixer.conv.conv.groups == 128
    assert model.layers[8].smixer.h_conv.conv.groups == 64 and model.layers[8].cmixer.conv.conv.groups == 128


# --- timm conformance (ecosystem.md §1.6) on a tiny config ----------------------------------------------


@pytest.mark.parametrize("hw", [TINY_HW, (29, 29), (256, 192), (33, 47)])
def test_forward_backward_sizes(hw):
    model = _tiny().train()
    x = _x(hw=hw).requires_grad_()
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("hw", [(28, 28), (28, 256), (256, 16)])
def test_too_small_input_is_a_clear_error(hw):
    with pytest.raises(ValueError, match=r"at least 29x29 px.*got \d+x\d+"):
        _tiny()(_x(hw=hw))


def test_min_input_size_follows_the_number_of_stages():
    two_stage = timm.create_model("spartan_t", depths=(1, 1), dims=(16, 16), expand_ratios=(2, 2)).eval()
    two_stage(_x(hw=(5, 5)))
    with pytest.raises(ValueError, match="at least 5x5"):
        two_stage(_x(hw=(4, 5)))


def test_num_classes_zero_gives_pooled_features():
    model = _tiny(num_classes=0)
    out = model(_x())
    assert out.shape == (2, model.num_features) == (2, 32)


def test_reset_classifier():
    model = _tiny()
    model.reset_classifier(5)
    assert model(_x()).shape == (2, 5) and model.get_classifier().out_features == 5
    model.reset_classifier(0, "")
    assert model(_x()).shape == (2, 32, 2, 1)


def test_forward_head_pre_logits_matches_forward():
    model = _tiny()
    x = _x()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 32, 2, 1)  # 64x48 input: stem 16x12, then /2 three times (floored)
        pooled = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pooled, feats.mean((2, 3)))
        torch.testing.assert_close(model.forward_head(feats), model(x))
        torch.testing.assert_close(model.linear(pooled), model(x))


def test_default_cfg_and_official_eval_preprocessing():
    model = timm.create_model("spartan_t")
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (3, 256, 256) and cfg["crop_pct"] == 1.0 and cfg["interpolation"] == "bilinear"
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert cfg["license"] == "apache-2.0" and cfg["paper_ids"] == "arXiv:2507.10999"
    assert cfg["origin_url"] == "https://github.com/henry-pay/SpaRTAN" and cfg["num_classes"] == 1000
    assert not cfg.get("url") and not cfg.get("hf_hub_id")
    assert isinstance(model.get_submodule(cfg["first_conv"]), torch.nn.Conv2d)
    assert model.get_submodule(cfg["classifier"]) is model.get_classifier()
    # official transform(train=False): Resize(256) -> CenterCrop(256) -> normalise
    steps = create_transform(**resolve_data_config({}, model=model)).transforms
    resize, crop = steps[0], steps[1]
    assert isinstance(resize, transforms.Resize) and resize.size == 256
    assert resize.interpolation == transforms.InterpolationMode.BILINEAR
    assert isinstance(crop, transforms.CenterCrop) and crop.size == (256, 256)


def test_features_only_matches_feature_info():
    model = timm.create_model("spartan_t", features_only=True, **{k: v for k, v in TINY.items() if k != "num_classes"})
    det_fill_(model, 0)
    feats = model.eval()(_x(hw=(64, 64)))
    assert [f.shape[1] for f in feats] == model.feature_info.channels() == [16, 16, 32, 32]
    assert [64 // f.shape[-1] for f in feats] == model.feature_info.reduction() == [4, 8, 16, 32]


def test_forward_intermediates_match_forward_features_and_stage_outputs():
    model = _tiny()
    x = _x()
    seen = {}
    hooks = [model.get_submodule(m["module"]).register_forward_hook(
        lambda _m, _i, out, name=m["module"]: seen.__setitem__(name, out)) for m in model.feature_info]
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(final, model.forward_features(x))
    assert len(inter) == 4
    for out, info in zip(inter, model.feature_info):
        torch.testing.assert_close(out, seen[info["module"]])
    with torch.no_grad():
        picked = model.forward_intermediates(x, indices=[0, 2], stop_early=True, intermediates_only=True)
    torch.testing.assert_close(picked[0], inter[0])
    torch.testing.assert_close(picked[1], inter[2])


def test_prune_intermediate_layers():
    model = _tiny()
    x = _x()
    with torch.no_grad():
        expected = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    kept = model.prune_intermediate_layers(indices=[1])
    assert kept == [1] and len(model.layers) == 3 and model.num_features == 16  # block, downsample, block
    with torch.no_grad():
        out = model.forward_intermediates(x, intermediates_only=True)
    assert len(out) == 2
    torch.testing.assert_close(out, expected)
    assert model(x).shape == (2, 16, 8, 6)  # head pruned: unpooled features of the last kept stage


def test_grad_checkpointing_gives_the_same_gradients():
    x = _x()
    grads = []
    for enable in (False, True):
        model = _tiny()
        model.set_grad_checkpointing(enable)
        model(x).square().sum().backward()
        grads.append(model.conv[0].conv.weight.grad)
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript():
    model = _tiny()
    scripted = torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(_x()), model(_x()))


@pytest.mark.cuda
def test_torch_compile_fullgraph(device):
    """Traces without graph breaks (argmax/gather and the size check included); ~45 s on a CPU, so CUDA only."""
    if device.type != "cuda":
        pytest.skip("torch.compile check runs with FREQLENS_TEST_DEVICE=cuda")
    model = _tiny().to(device)
    x = _x().to(device)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():  # TF32 is off for every test (conftest)
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_no_weight_decay_follows_the_official_rule():
    """Official ``set_weight_decay``: no decay for 1-D params, biases and names containing norm/gamma."""
    model = _tiny()
    groups = param_groups_weight_decay(model, weight_decay=0.03, no_weight_decay_list=model.no_weight_decay())
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    official = {id(p) for n, p in model.named_parameters()
                if p.ndim == 1 or n.endswith("bias") or "norm" in n or "gamma" in n}
    assert no_decay == official
    decayed = {n for n, p in model.named_parameters() if id(p) not in no_decay}
    assert "layers.0.scale_1" in decayed and "layers.0.cmixer.complex" in decayed


def test_group_matcher_covers_every_parameter():
    model = _tiny()
    groups = timm.models.group_parameters(model, model.group_matcher())
    assert sum(len(names) for names in groups.values()) == len(list(model.parameters()))


def test_float64_matches_float32():
    model = _tiny()
    with torch.no_grad():
        ref = model(_x())
        out = model.double()(_x().double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), ref, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_runs_and_keeps_the_complex_product_in_float32():
    model = _tiny()
    seen = []
    wave = model.layers[0].cmixer.wave
    hook = wave.register_forward_hook(lambda _m, args, out: seen.append((args[0], args[1], out)))
    with torch.no_grad():
        ref = model(_x())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(_x())
    hook.remove()
    x, weight, modulated = seen[-1]
    assert x.dtype == modulated.dtype == torch.bfloat16
    # the product of the bf16 input is formed in float32 and rounded once (official: float32 island)
    torch.testing.assert_close(modulated, wave(x.float(), weight).to(torch.bfloat16), rtol=0, atol=0)
    assert torch.isfinite(out).all()
    assert rel_err(out, ref) < 0.1


def test_wave_modulation_is_complex_multiplication_of_adjacent_pairs():
    weight = torch.randn(1, 1, 1, 3, 2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 6, 4, 5, generator=torch.Generator().manual_seed(1))
    # reference: the official formulation with complex tensors (NHWC, pairs in the last dim)
    z = torch.view_as_complex(x.permute(0, 2, 3, 1).reshape(2, 4, 5, 3, 2).contiguous())
    ref = torch.view_as_real(torch.view_as_complex(weight) * z).reshape(2, 4, 5, 6).permute(0, 3, 1, 2)
    torch.testing.assert_close(WaveModulation()(x, weight), ref)


# --- official checkpoint layouts ------------------------------------------------------------------------


def _fake_omegaconf() -> dict[str, types.ModuleType]:
    """Modules whose classes pickle exactly like OmegaConf 2.x nodes (NEWOBJ of the class, BUILD of its state).

    A real ``DictConfig`` pickles as ``omegaconf.dictconfig.DictConfig`` with state ``_metadata``
    (``omegaconf.base.ContainerMetadata``), ``_parent``, ``_content`` (key -> node); leaves are
    ``omegaconf.nodes.AnyNode`` with ``_metadata`` (``omegaconf.base.Metadata``), ``_parent``, ``_val``.
    """
    modules = {}
    for qualified in ("omegaconf.base.Metadata", "omegaconf.base.ContainerMetadata", "omegaconf.dictconfig.DictConfig",
                      "omegaconf.listconfig.ListConfig", "omegaconf.nodes.AnyNode"):
        module_name, name = qualified.rsplit(".", 1)
        module = modules.setdefault(module_name, types.ModuleType(module_name))
        setattr(module, name, type(name, (), {"__module__": module_name, "__qualname__": name}))
    modules["omegaconf"] = types.ModuleType("omegaconf")
    return modules


def _omegaconf_tree(modules, value, key=None, parent=None, flags=None):
    """Build fake OmegaConf nodes for a plain dict/list/value, with the metadata fields OmegaConf pickles."""
    kind = {dict: "DictConfig", list: "ListConfig"}.get(type(value), "AnyNode")
    owner = {"DictConfig": "omegaconf.dictconfig", "ListConfig": "omegaconf.listconfig", "AnyNode": "omegaconf.nodes"}
    node = getattr(modules[owner[kind]], kind)()
    meta = getattr(modules["omegaconf.base"], "Metadata" if kind == "AnyNode" else "ContainerMetadata")()
    meta.__dict__.update(ref_type=typing.Any, object_type={"DictConfig": dict, "ListConfig": list}.get(kind),
                         optional=True, key=key, flags=flags or {}, flags_root=False,
                         resolver_cache=collections.defaultdict(dict))
    if kind != "AnyNode":
        meta.__dict__.update(key_type=typing.Any if kind == "DictConfig" else int, element_type=typing.Any)
    node.__dict__.update(_metadata=meta, _parent=parent)
    if kind == "DictConfig":
        node._content = {k: _omegaconf_tree(modules, v, k, node) for k, v in value.items()}
    elif kind == "ListConfig":
        node._content = [_omegaconf_tree(modules, v, i, node) for i, v in enumerate(value)]
    else:
        node._val = value
    return node


RUN_CONFIG = {"model": {"name": "SpaRTAN", "skip_list": ["norm", "gamma"], "build": OFFICIAL_BUILD},
              "data": {"name": "IMAGENET", "num_classes": 1000}, "load_file": None, "init_lr": 2.5e-3, "use_amp": True}


def _training_script_checkpoint(model, monkeypatch) -> dict:
    """``src/main.py: save_checkpoint``: epoch, the run's OmegaConf config, weights, optimiser, scheduler, scaler."""
    modules = _fake_omegaconf()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    optim = torch.optim.AdamW(model.parameters(), lr=2.5e-3)
    return {
        "epoch": 300,
        "config": _omegaconf_tree(modules, RUN_CONFIG, flags={"struct": True}),
        "model": model.state_dict(),
        "optim": optim.state_dict(),
        "sched": CosineLRScheduler(optim, t_initial=300, lr_min=1e-6, warmup_t=20, warmup_lr_init=1e-4).state_dict(),
        # an enabled CUDA GradScaler's state (a CPU-only GradScaler is disabled and saves {})
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                   "_growth_tracker": 0},
    }


LAYOUTS = {
    "training_script": _training_script_checkpoint,
    "bare_state_dict": lambda model, _mp: model.state_dict(),
    "state_dict_ddp": lambda model, _mp: {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
    "model_ema": lambda model, _mp: {"model_ema": model.state_dict(), "epoch": 3},
}


@pytest.fixture(scope="module")
def official_weights() -> SpaRTAN:
    model = timm.create_model("spartan_t")
    det_fill_(model, 0)
    return model


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_checkpoint_layouts_load_strict(layout, official_weights, tmp_path, monkeypatch):
    path = tmp_path / "spartan_t.pth"
    with monkeypatch.context() as mp:
        torch.save(LAYOUTS[layout](official_weights, mp), path)
    loaded = timm.create_model("spartan_t", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    theirs = official_weights.state_dict()
    assert list(loaded.state_dict()) == list(theirs)
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, theirs[name]), name


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_checkpoint_filter_fn_unwraps_every_layout(layout, official_weights, monkeypatch):
    """The filter alone (as freqlens' own loader calls it) finds the weights in the raw file object."""
    with monkeypatch.context() as mp:
        raw = LAYOUTS[layout](official_weights, mp)
    filtered = checkpoint_filter_fn(raw, official_weights)
    assert list(filtered) == list(official_weights.state_dict())


def test_training_script_checkpoint_config_is_read_without_omegaconf(official_weights, tmp_path, monkeypatch):
    path = tmp_path / "spartan_t.pth"
    with monkeypatch.context() as mp:
        torch.save(_training_script_checkpoint(official_weights, mp), path)
    assert "omegaconf" not in sys.modules
    with open(path, "rb") as f:
        assert b"omegaconf.dictconfig" in f.read()  # the file really names OmegaConf's classes
    checkpoint = torch.load(path, weights_only=True)
    assert isinstance(checkpoint["config"], DictConfigStandIn)
    assert to_plain(checkpoint["config"]) == RUN_CONFIG
    build = to_plain(checkpoint["config"])["model"]["build"]
    model = timm.create_model("spartan_t", depths=build["layer_depths"], dims=(build["init_dim"], *build["dims"]),
                              expand_ratios=build["expand_ratios"])
    assert list(model.state_dict()) == list(checkpoint["model"])


def test_pretrained_with_other_num_classes_drops_the_classifier(official_weights, tmp_path):
    path = tmp_path / "spartan_t.pth"
    torch.save(official_weights.state_dict(), path)
    model = timm.create_model("spartan_t", pretrained=True, num_classes=7, pretrained_cfg_overlay=dict(file=str(path)))
    assert model.linear.out_features == 7
    torch.testing.assert_close(model.conv[0].conv.weight, official_weights.conv[0].conv.weight)


# --- lens readiness -------------------------------------------------------------------------------------


def test_probe_points_of_spartan_t():
    model = timm.create_model("spartan_t")
    names = [p.name for p in model.probe_points]
    assert len(names) == len(set(names)) == 3 + 3 + 20 * 10
    for point in model.probe_points:
        model.get_submodule(point.name)
    stages = [p for p in model.probe_points if p.kind == "stage"]
    expected = [("layers.2", 4), ("layers.6", 8), ("layers.19", 16), ("layers.22", 32)]
    assert [(p.name, p.reduction) for p in stages] == expected
    assert [p.name for p in model.probe_points if p.kind == "downsample"] == ["layers.3", "layers.7", "layers.20"]
    assert model.gradcam_target.name == "layers.22" and model.gradcam_target.layout == "NCHW"
    official_vis = ["conv", "layers.2", "layers.2.smixer", "layers.2.smixer.h_conv", "layers.2.smixer.l_conv",
                    "layers.2.cmixer", "layers.2.cmixer.theta", "layers.2.cmixer.proj"]
    assert set(official_vis) <= set(names)


def test_probe_points_produce_the_declared_maps():
    model = _tiny()
    shapes = assert_probe_maps_declared(model, _x(hw=(64, 64)))
    assert shapes[model.gradcam_target.name][1] == (2, 32, 2, 2)


def test_wave_probe_is_the_input_of_the_cmixer_conv():
    model = _tiny()
    cmixer = model.layers[0].cmixer
    seen = {}
    hooks = [cmixer.wave.register_forward_hook(lambda _m, _a, out: seen.__setitem__("wave", out)),
             cmixer.conv.register_forward_pre_hook(lambda _m, args: seen.__setitem__("conv_in", args[0]))]
    with torch.no_grad():
        model(_x())
    for h in hooks:
        h.remove()
    assert torch.equal(seen["wave"], seen["conv_in"])


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_layouts_load_through_freqlens_loader(layout, official_weights, tmp_path, monkeypatch):
    """The path of ``freqlens spectrum --ckpt spartan_t.pth``."""
    from freqlens.loading import load_model

    path = tmp_path / "spartan_t.pth"
    with monkeypatch.context() as mp:
        torch.save(LAYOUTS[layout](official_weights, mp), path)
    loaded = load_model("spartan_t", path)
    assert_weights_equal(loaded.model, official_weights.state_dict())
