"""The lens leaves nothing behind, converts every layout to NCHW, and finds sensible default probe points."""
from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from freqlens.errors import FreqlensError
from freqlens.lens import Lens, ProbePoint, default_probe_points, preserved_state, select_probe_points


def _tiny_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_removed_and_state_restored_on_success_and_error():
    net = _tiny_cnn().train()
    net[0].weight.requires_grad_(False)
    seen = []
    with Lens(net, [ProbePoint("0"), ProbePoint("3")], lambda p, f: seen.append((p.name, tuple(f.shape)))) as lens:
        assert not net.training  # eval inside the lens
        lens.model(torch.zeros(2, 3, 8, 8))
    assert seen == [("0", (2, 4, 8, 8)), ("3", (2, 4, 8, 8))]
    assert _hook_count(net) == 0 and net.training and not net[0].weight.requires_grad

    def failing(_p, _f):
        raise RuntimeError("observer failed")

    with pytest.raises(RuntimeError, match="observer failed"):
        with Lens(net, [ProbePoint("0")], failing) as lens:
            lens.model(torch.zeros(1, 3, 8, 8))
    assert _hook_count(net) == 0 and net.training


def test_preserved_state_restores_nested_modes_and_grad_flags():
    net = _tiny_cnn().train()
    net[1].eval()
    with preserved_state(net):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
    assert net.training and not net[1].training
    assert all(p.requires_grad for p in net.parameters())


def test_bad_probe_name_fails_before_any_hook():
    net = _tiny_cnn()
    with pytest.raises(AttributeError):
        with Lens(net, [ProbePoint("0"), ProbePoint("nope")], lambda p, f: None):
            pass
    assert _hook_count(net) == 0


class _Tokens(nn.Module):
    """Emits (B, prefix + gh*gw, C) tokens whose values encode their grid position."""

    def __init__(self, prefix: int, patch: int) -> None:
        super().__init__()
        self.prefix, self.patch = prefix, patch
        self.out = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        gh, gw = h // self.patch, w // self.patch
        grid = torch.arange(gh * gw, dtype=torch.float32).reshape(1, gh * gw, 1).expand(b, -1, 2)
        tokens = torch.cat([torch.full((b, self.prefix, 2), -1.0), grid], dim=1)
        return self.out(tokens)


@pytest.mark.parametrize("prefix", [0, 1, 2])
@pytest.mark.parametrize("hw", [(32, 32), (32, 48)])
def test_token_layout_to_grid(prefix, hw):
    model = _Tokens(prefix, patch=8)
    got = []
    point = ProbePoint("out", "NLC", reduction=8, prefix_tokens=prefix)
    with Lens(model, [point], lambda p, f: got.append(f)) as lens:
        lens.model(torch.zeros(1, 3, *hw))
    gh, gw = hw[0] // 8, hw[1] // 8
    assert got[0].shape == (1, 2, gh, gw)
    assert torch.equal(got[0][0, 0], torch.arange(gh * gw, dtype=torch.float32).reshape(gh, gw))  # row-major grid


def test_token_count_mismatch_is_a_clear_error():
    point = ProbePoint("out", "NLC", reduction=8, prefix_tokens=0)
    with pytest.raises(FreqlensError, match="do not match 0 prefix tokens"):
        with Lens(_Tokens(1, 8), [point], lambda p, f: None) as lens:
            lens.model(torch.zeros(1, 3, 32, 32))


def test_nhwc_layout_is_transposed():
    point = ProbePoint("", "NHWC")
    x = torch.randn(2, 5, 6, 3)
    assert torch.equal(point.to_nchw(x, (5, 6)), x.permute(0, 3, 1, 2))


def test_probe_point_validation():
    with pytest.raises(ValueError, match="layout"):
        ProbePoint("x", "NCWH")
    with pytest.raises(ValueError, match="reduction"):
        ProbePoint("x", "NLC")


def test_default_points_of_timm_vit_handle_cls_token():
    vit = timm.create_model("vit_tiny_patch16_224", img_size=64, depth=2, num_classes=3)
    points = default_probe_points(vit, (3, 64, 64))
    assert [p.name for p in points] == ["blocks.0", "blocks.1"]
    assert all(p.layout == "NLC" and p.prefix_tokens == 1 and p.reduction == 16 for p in points)
    shapes = []
    with Lens(vit, points, lambda p, f: shapes.append(tuple(f.shape))) as lens:
        lens.model(torch.zeros(1, 3, 64, 64))
    assert shapes == [(1, 192, 4, 4)] * 2


def test_default_points_of_timm_cnn_expand_stages_into_blocks():
    net = timm.create_model("resnet18", num_classes=3)
    names = [p.name for p in default_probe_points(net, (3, 64, 64))]
    assert names == ["maxpool", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]


def test_a_stem_pool_with_anti_aliasing_is_probed_after_it():
    net = timm.create_model("resnet18", num_classes=3, aa_layer=timm.layers.BlurPool2d)
    points = default_probe_points(net, (3, 64, 64))
    assert points[0].name == "maxpool" and points[0].reduction == 4


def test_default_points_of_plain_torch_model():
    net = _tiny_cnn()
    assert [p.name for p in default_probe_points(net, (3, 16, 16))] == ["0", "1", "2", "3"]


def test_select_probe_points_by_glob_and_unknown_pattern():
    points = [ProbePoint(f"blocks.{i}") for i in range(12)]
    assert [p.name for p in select_probe_points(points, ["blocks.1?"])] == ["blocks.10", "blocks.11"]
    with pytest.raises(FreqlensError, match="matches none"):
        select_probe_points(points, ["stages.*"])
