"""Spectral VMamba: goldens (with the injected stage-0 order), scan-order facts, batch coupling,
rotation behaviour, official checkpoint loading and timm conformance at reduced size.

The full-size models are built on the meta device and materialised by ``det_fill_`` (which overwrites
every parameter and BatchNorm statistic), which saves the random init of 215M-363M parameters.
"""
from __future__ import annotations

import base64
import platform
import sys

import networkx as nx
import numpy as np
import pytest
import timm
import torch

from freqlens.errors import FreqlensError
from freqlens.lens.lens import Lens
from freqlens.models.spectral_vmamba import SpectralVMamba, _rotate, checkpoint_filter_fn
from freqlens.scan_order import (
    capture_scan_input, derive_scan_order, diagnose_features, diagnose_scan_order, knn_graph_adjacency, patch_graphs,
    patch_tokens, spectral_order,
)
from golden import (
    assert_output_matches, assert_state_dict_matches, assert_weights_equal, det_fill_, golden_input, golden_variants,
    install_fake_yacs, load_golden, rel_err,
)

VARIANTS = golden_variants("spectral_vmamba_")
TINY = dict(depths=(1, 1, 1, 1), dims=(256, 32, 32, 32), num_classes=10)
_FULL: dict[str, torch.nn.Module] = {}


def _det_model(variant: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        model = timm.create_model(variant, **kwargs)
    model.to_empty(device="cpu").eval()
    return det_fill_(model, 0)


def _full_model(variant: str) -> torch.nn.Module:
    """The golden model (100 classes); S and B are one network (only drop_path differs), so B reuses S's
    det-filled tensors (det_fill_ depends only on names and shapes, which the state_dict test checks)."""
    if variant not in _FULL:
        if variant == "spectral_vmamba_b":
            with torch.device("meta"):
                model = timm.create_model(variant, num_classes=100)
            model.load_state_dict(_full_model("spectral_vmamba_s").state_dict(), assign=True)
            _FULL[variant] = model.eval()
        else:
            _FULL.pop("spectral_vmamba_t", None)  # T is only needed until S is built
            _FULL[variant] = _det_model(variant, num_classes=100)
    return _FULL[variant]


@pytest.fixture(scope="module")
def tiny() -> SpectralVMamba:
    return _det_model("spectral_vmamba_t", **TINY)


# ---------------------------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden(variant, device):  # TF32 is off for every test (conftest)
    golden = load_golden(variant)
    assert golden["official"]["commit"] == "389a8be69919579dac8483d630708e25872774ba"
    model = _full_model(variant).to(device)
    assert_state_dict_matches(model, golden)
    orders = golden["aux"]["scan_orders"]
    rfn = []
    handle = model.rfn.register_forward_hook(lambda _m, _a, out: rfn.append(out))
    model.set_scan_order(torch.tensor(orders["stage0"], device=device))
    try:
        with torch.no_grad():
            logits = model(golden_input(golden).to(device))
    finally:
        model.set_scan_order(None)
        handle.remove()
    assert_output_matches(logits, golden, tol=1e-5)
    for stage in ("stage0", "stage1", "stage2", "stage3"):  # stages 1..3 are derived by the model
        ours = model.last_scan_orders[stage].cpu()
        assert torch.equal(ours, torch.tensor(orders[stage])), f"{variant}: {stage} order"
    stats = golden["aux"]["rfn_output"]
    assert list(rfn[0].shape) == stats["shape"]
    for key, value in (("mean", rfn[0].mean()), ("std", rfn[0].std()), ("max", rfn[0].max()), ("min", rfn[0].min())):
        assert abs(float(value) - stats[key]) <= 1e-5 * max(1.0, abs(stats[key])), f"{variant}: RFN {key}"


def test_stage2_orders_at_224_are_not_permutations():
    """Official quirk kept: 7 -> 4 derivation assumes an even previous width."""
    stage2 = torch.tensor(load_golden("spectral_vmamba_t")["aux"]["scan_orders"]["stage2"])
    assert any(len(set(stage2[b, :, k].tolist())) < 16 for b in range(2) for k in range(4))


def test_true_width_fix_gives_permutations():
    stage1 = torch.tensor(load_golden("spectral_vmamba_t")["aux"]["scan_orders"]["stage1"])
    fixed = derive_scan_order(stage1, (7, 7), (4, 4), true_width=True)
    assert all(sorted(fixed[b, :, k].tolist()) == list(range(16)) for b in range(2) for k in range(4))
    official = derive_scan_order(stage1, (7, 7), (4, 4))
    assert torch.equal(official, torch.tensor(load_golden("spectral_vmamba_t")["aux"]["scan_orders"]["stage2"]))


def test_derived_orders_at_other_sizes():
    """256x192 (16x12 -> 8x6 -> 4x3 -> 2x2): stage 3 is the broken one; 80x80 fails as the official code does."""
    order = torch.randperm(192, generator=torch.Generator().manual_seed(0))[None, :, None].repeat(1, 1, 4)
    grids = [(16, 12), (8, 6), (4, 3), (2, 2)]
    for prev, new in zip(grids, grids[1:]):
        order = derive_scan_order(order, prev, new)
        is_perm = sorted(order[0, :, 0].tolist()) == list(range(new[0] * new[1]))
        assert is_perm == (new != (2, 2)), new
    order = torch.arange(25)[None, :, None].repeat(1, 1, 4)
    with pytest.raises(FreqlensError, match="cannot derive"):
        derive_scan_order(derive_scan_order(order, (5, 5), (3, 3)), (3, 3), (2, 2))
    fixed = derive_scan_order(derive_scan_order(order, (5, 5), (3, 3), True), (3, 3), (2, 2), True)
    assert sorted(fixed[0, :, 0].tolist()) == [0, 1, 2, 3]


def _stored_scan_input(golden: dict) -> torch.Tensor:
    spec = golden["aux"]["stage0_crossscan_input"]
    data = np.frombuffer(base64.b64decode(spec["data"]), dtype="<f4").copy()
    return torch.from_numpy(data).view(spec["shape"]).contiguous(memory_format=torch.channels_last)


def test_spectral_graph_facts_of_the_golden_scan_input():
    golden = load_golden("spectral_vmamba_t")
    aux = golden["aux"]
    u = _stored_scan_input(golden)
    graph = knn_graph_adjacency(patch_tokens(u))
    assert abs(float(graph.sigma[0]) - aux["gaussian_sigma"]) < 1e-6 * aux["gaussian_sigma"]
    diagnostics = diagnose_features(u)
    assert [d.num_components for d in diagnostics] == aux["stage0_knn_graph_components"]
    assert diagnostics[0].component_sizes == (144, 52) and all(d.ill_defined for d in diagnostics)
    ref = torch.tensor(aux["stage0_eigvals_first6"], dtype=torch.float64)
    ours = torch.tensor([d.eigenvalues for d in diagnostics], dtype=torch.float64)
    assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)


def test_official_stage0_order_bit_exact_on_the_golden_platform():
    """Only meaningful with the golden's library build, CPU kind and 1 thread (see the golden notes)."""
    golden = load_golden("spectral_vmamba_t")
    aux = golden["aux"]
    ours = [f"CPU capability usage: {torch.backends.cpu.get_cpu_capability()}", torch.__version__, platform.machine()]
    capability = next((s for s in aux["cpu_and_libs"] if s.startswith("CPU capability")), "")
    theirs = [capability, aux["torch_version"], aux["machine"]]
    if ours != theirs or torch.get_num_threads() != 1:
        pytest.skip(f"platform {ours}, {torch.get_num_threads()} threads differs from the golden's {theirs}, 1 thread")
    order = torch.sort(spectral_order(_stored_scan_input(golden)), dim=1, stable=True).indices
    assert torch.equal(order, torch.tensor(aux["scan_orders"]["stage0"]))


# ------------------------------------------------------------------------------------- scan-order modes


def test_batch_coupling_official_but_not_deterministic(device):
    golden = load_golden("spectral_vmamba_t")
    model = _full_model("spectral_vmamba_t").to(device)
    x = golden_input(golden).to(device)
    try:
        with torch.no_grad():
            pair, order_pair = model(x), model.last_scan_orders["stage0"]
            alone, order_alone = model(x[:1]), model.last_scan_orders["stage0"]
            assert rel_err(alone[0], pair[0]) > 5e-4  # sigma is a statistic of the whole batch (CPU ~1e-2, CUDA ~1.6e-3)
            assert not torch.equal(order_alone[0], order_pair[0])
            model.configure_scan("deterministic")
            assert model.scan_config["sigma_mode"] == "sample"
            pair, order_pair = model(x), model.last_scan_orders["stage0"]
            alone, order_alone = model(x[:1]), model.last_scan_orders["stage0"]
            assert torch.equal(order_alone[0], order_pair[0])
            assert rel_err(alone[0], pair[0]) < 1e-5
    finally:
        model.configure_scan("official")


def test_deterministic_order_is_thread_independent():
    u = torch.randn(2, 64, 6, 6, generator=torch.Generator().manual_seed(0))
    first = spectral_order(u, mode="deterministic", sigma_mode="sample")
    threads = torch.get_num_threads()
    torch.set_num_threads(2 if threads == 1 else 1)
    try:
        second = spectral_order(u, mode="deterministic", sigma_mode="sample")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first, second)
    assert first.dtype == torch.float64 and first.shape == (2, 36, 4)


def test_scan_order_injection_and_validation(tiny):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tiny(x)
        computed = tiny.last_scan_orders
        assert list(computed) == ["stage0", "stage1", "stage2", "stage3"]
        assert computed["stage0"].shape == (2, 16, 4) and computed["stage1"].shape == (2, 4, 4)
        flipped = computed["stage0"].flip(1)
        tiny.set_scan_order(flipped)
        try:
            tiny(x)
            assert torch.equal(tiny.last_scan_orders["stage0"], flipped)
            assert tiny.scan_config["injected_stage0_order"]
            with pytest.raises(ValueError, match="shape"):
                tiny(x[:1])  # the injected order is for a batch of 2
        finally:
            tiny.set_scan_order(None)
    with pytest.raises(ValueError, match="int64"):
        tiny.set_scan_order(computed["stage0"].float())
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        tiny.set_scan_order(computed["stage0"] + 16)
    with pytest.raises(FreqlensError, match="divisible by 16"):
        tiny(torch.randn(1, 3, 72, 64))
    with pytest.raises(ValueError, match="scan_order_mode"):
        tiny.configure_scan("fastest")


def test_diagnose_scan_order(tiny):
    images = torch.randn(3, 3, 64, 64)
    found = diagnose_scan_order(tiny, images)
    assert len(found) == 3 and all(d.num_components >= 1 and len(d.eigenvalues) == 6 for d in found)
    graphs = patch_graphs(capture_scan_input(tiny, images))
    assert [nx.number_connected_components(g) for g in graphs] == [d.num_components for d in found]
    assert graphs[0].number_of_nodes() == 16 and graphs[0].nodes[5]["pos"] == (1, 1)
    assert tiny.training is False


# ------------------------------------------------------------------------------------------- rotations


def test_rotate_matches_torchvision_for_square_maps():
    import torchvision.transforms.functional as TF

    x = torch.randn(2, 3, 32, 32)
    for angle in (0, 90, 180, 270, -90, -180, -270):
        assert torch.equal(_rotate(x, angle), TF.rotate(x, angle)), angle


def test_rfn_is_rot90_equivariant_but_the_model_is_not(tiny, device):
    """Each rotation's features are computed on the same 4 rotated images, so the max is exactly equivariant."""
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)).to(device)
    try:
        with torch.no_grad():
            tiny.to(device)
            feats, logits = tiny.forward_rfn(x), tiny(x)
            for k in (1, 2, 3):
                rotated = torch.rot90(x, k, dims=(2, 3))
                assert torch.equal(tiny.forward_rfn(rotated), torch.rot90(feats, k, dims=(2, 3))), k
                assert rel_err(tiny(rotated), logits) > 1e-3, k  # subsampling, derived orders and signs break invariance
    finally:
        tiny.cpu()


# ----------------------------------------------------------------------------------------- checkpoints


def test_official_checkpoint_loads_through_timm_without_yacs(tmp_path, monkeypatch):
    assert "yacs" not in sys.modules
    src = timm.create_model("spectral_vmamba_t", **TINY)
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in src.state_dict().items()}
    cfg_node = install_fake_yacs(monkeypatch)
    config = cfg_node(MODEL=cfg_node(NAME="spectral_vmamba_tiny_224", NUM_CLASSES=10))
    config.__dict__["__immutable__"] = True
    path = tmp_path / "ckpt_best.pth"
    torch.save({"model": src.state_dict(), "model_ema": ema, "config": config, "epoch": 3, "max_accuracy": 1.0}, path)
    monkeypatch.delitem(sys.modules, "yacs.config")
    monkeypatch.delitem(sys.modules, "yacs")

    overlay = dict(file=str(path), num_classes=10)  # the file's head size (timm drops a head of another size)
    loaded = timm.create_model("spectral_vmamba_t", pretrained=True, pretrained_cfg_overlay=overlay, **TINY)
    for k, v in loaded.state_dict().items():  # timm takes model_ema when present
        assert torch.equal(v, ema[k]), k
    whole = torch.load(path, weights_only=True)
    assert whole["config"]["MODEL"]["NAME"] == "spectral_vmamba_tiny_224"
    fresh = SpectralVMamba(**TINY)
    fresh.load_state_dict(checkpoint_filter_fn(whole, fresh, weights="model"), strict=True)
    assert_weights_equal(src, fresh.state_dict())
    ddp = {f"module.{k}": v for k, v in ema.items()}
    assert checkpoint_filter_fn(ddp, fresh).keys() == ema.keys()


# ---------------------------------------------------------------------------------- timm conformance


def test_timm_conformance(tiny):
    cfg = tiny.pretrained_cfg
    keys = ("input_size", "crop_pct", "interpolation", "mean", "std", "first_conv", "classifier", "license",
            "paper_ids")
    for key in keys:
        assert key in cfg, key
    assert cfg["num_classes"] == 1000 and tiny.get_submodule(cfg["first_conv"]).in_channels == 3
    x = torch.randn(2, 3, 64, 96)  # non-square: the RFN rotates inside the canvas with torchvision
    with torch.no_grad():
        logits = tiny(x)
        feats = tiny.forward_features(x)
        assert logits.shape == (2, 10) and feats.shape == (2, 32, 1, 1)
        assert torch.allclose(tiny.forward_head(feats), logits)
        assert tiny.forward_head(feats, pre_logits=True).shape == (2, tiny.num_features)
        final, inter = tiny.forward_intermediates(x)
        assert torch.equal(final, feats)
        assert [t.shape[1] for t in inter] == [i["num_chs"] for i in tiny.feature_info]
        assert [t.shape[-2:] for t in inter] == [(4, 6), (2, 3), (1, 2), (1, 1)]
        assert torch.equal(tiny.forward_intermediates(x, indices=[1], intermediates_only=True)[0], inter[1])


def test_timm_train_backward_and_heads():
    model = timm.create_model("spectral_vmamba_t", **TINY).train()
    assert not model.model_patchification.training  # frozen front end keeps its BN statistics
    model.set_grad_checkpointing(True)
    out = model(torch.randn(2, 3, 64, 96))  # token grids 4x6, 2x3, 1x2, 1x1
    out.mean().backward()
    for name, p in model.named_parameters():
        if name.startswith("model_patchification."):  # frozen front end
            assert p.grad is None, name
        elif name == "layers.3.blocks.0.op.A_logs":  # a single token (stage 3): the state never decays
            assert p.grad is None or not p.grad.any(), name
        else:
            assert p.grad is not None, name
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 32)
    features = timm.create_model("spectral_vmamba_t", features_only=True, out_indices=(1, 3), **TINY)
    with torch.no_grad():
        maps = features(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == features.feature_info.channels() == [32, 32]
    assert features.feature_info.reduction() == [32, 128]


def test_dtypes_and_probe_points(tiny):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(tiny(x)).all()
    double = _det_model("spectral_vmamba_t", **TINY).double()
    with torch.no_grad():
        assert double(x.double()).dtype == torch.float64
    seen = {}
    with Lens(tiny, tiny.probe_points, lambda p, f: seen.setdefault(p.name, f.shape)) as lens, torch.no_grad():
        lens.model(torch.randn(2, 3, 64, 64))
    assert set(seen) == {p.name for p in tiny.probe_points}
    assert seen["layers.0.blocks.0.op.CrossScan"] == (2, 4, 4, 4)
    assert seen["layers.1.blocks.0.op.scan_positions"] == (2, 4, 2, 2)
    assert tiny.gradcam_target.name == "layers.3.blocks"
    op = tiny.get_submodule("layers.1.blocks.0.op")
    op.capture_scan = True
    try:
        with torch.no_grad():
            tiny(torch.randn(2, 3, 64, 64))
    finally:
        op.capture_scan = False
    assert op.scan_data["ys"].shape == (2, 8, 64, 4) and op.scan_data["Bs"].shape == (2, 8, 1, 4)
    assert torch.equal(op.scan_data["order"], tiny.last_scan_orders["stage1"])
