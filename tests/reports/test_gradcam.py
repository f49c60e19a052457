"""Grad-CAM wrapper: maps land on the object for every layout, and no trap of pytorch-grad-cam leaks out.

The models are built by hand so the right answer is known: each one's class-0 logit grows with the
brightness of the image, so an explanation of class 0 must peak on the one bright square.
"""
from __future__ import annotations

import re

import pytest
import timm
import torch
from torch import nn

from freqlens.errors import FreqlensError
from freqlens.lens.probes import ProbePoint
from freqlens.reports.gradcam import (
    METHODS,
    cascading_randomisation,
    default_gradcam_target,
    gradcam,
    randomisation_steps,
)

H, W = 32, 48  # not square, so a transposed map cannot pass
SQUARE = (slice(8, 16), slice(28, 36))  # on the 4-pixel grid of the CNNs


def bright_square(h: int = H, w: int = W, square=SQUARE, batch: int = 2) -> torch.Tensor:
    x = torch.zeros(batch, 3, h, w)
    x[:, :, square[0], square[1]] = 1.0
    return x


def assert_peaked(maps: torch.Tensor, square=SQUARE) -> None:
    """The map's maximum lies in the square, and the square is far brighter than the rest."""
    for m in maps:
        inside = torch.zeros_like(m, dtype=torch.bool)
        inside[square] = True
        row, col = divmod(int(m.argmax()), m.shape[1])
        assert inside[row, col], f"peak at {(row, col)}, square at {square}"
        assert m[inside].mean() > 4 * m[~inside].mean() + 1e-3, (m[inside].mean(), m[~inside].mean())


class BrightCNN(nn.Module):
    """NCHW: channel 0 of ``features`` is the local brightness; class 0 reads it."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4))
        self.head = nn.Linear(4, 3)
        with torch.no_grad():
            self.features[0].weight.normal_(0, 0.01)
            self.features[0].weight[0] = 1 / 27
            self.features[0].bias.zero_()
            self.head.weight.normal_(0, 0.01)
            self.head.weight[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class BrightNHWC(nn.Module):
    """NHWC block (a Linear over the last axis), declared like a zoo model does."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 4, stride=4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.head = nn.Linear(4, 3)
        self.gradcam_target = ProbePoint("block", "NHWC", reduction=4, kind="block")
        with torch.no_grad():
            self.stem.weight.zero_()
            self.stem.weight[0] = 1 / 48
            self.stem.bias.zero_()
            self.block[0].weight.copy_(torch.eye(4))
            self.block[0].bias.zero_()
            self.head.weight.zero_()
            self.head.weight[0, 0] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.stem(x).permute(0, 2, 3, 1))  # (B, H, W, C)
        return self.head(y.mean(dim=(1, 2)))


def bright_vit(class_token: bool) -> nn.Module:
    """A 2-block timm ViT whose blocks pass tokens through, except that the last block's attention
    (uniform, q = k = 0) carries the mean brightness channel into every token, the class token included.
    Channel 0 of each patch embedding is the patch's brightness, channel 1 a constant (so LayerNorms
    keep channel 0's value)."""
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=(64, 96), depth=2, num_classes=3,
        class_token=class_token, global_pool="token" if class_token else "avg",
    )
    dim = model.embed_dim
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
        model.patch_embed.proj.weight[0] = 1 / (3 * 16 * 16)
        model.patch_embed.proj.bias[1] = 1.0
        if class_token:
            model.cls_token[0, 0, 1] = 1.0
        last = model.blocks[-1].attn
        last.qkv.weight[2 * dim, 0] = 1.0  # v channel 0 <- norm1 channel 0
        last.proj.weight[0, 0] = 1.0
        model.head.weight[0, 0] = 1.0
    return model


VIT_SQUARE = (slice(16, 32), slice(48, 64))  # one 16x16 patch: token (1, 3) of a 4x6 grid


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "layercam", "scorecam"])
def test_cnn_map_peaks_on_square(method, device):
    result = gradcam(BrightCNN().to(device), bright_square().to(device), classes=0, method=method)
    assert result.maps.shape == result.raw.shape == (2, H, W)
    assert result.target.name == "features.2" and result.target.layout == "NCHW"
    assert float(result.maps.min()) >= 0.0 and float(result.maps.max()) == pytest.approx(1.0, abs=1e-5)
    assert_peaked(result.maps)


def test_eigencam_runs_without_gradients():
    result = gradcam(BrightCNN(), bright_square(), classes=0, method="eigencam")
    assert result.maps.shape == (2, H, W) and torch.isfinite(result.raw).all()


def test_nhwc_block_is_transposed(device):
    model = BrightNHWC().to(device)
    result = gradcam(model, bright_square().to(device), classes=0)
    assert result.target == model.gradcam_target
    assert_peaked(result.maps)


@pytest.mark.parametrize("class_token", [False, True], ids=["avg-pool", "cls-token"])
def test_vit_token_grid_without_prefix_tokens(class_token, device):
    model = bright_vit(class_token).to(device)
    images = bright_square(64, 96, VIT_SQUARE).to(device)
    result = gradcam(model, images, classes=0)
    assert result.target.layout == "NLC"
    assert result.target.prefix_tokens == (1 if class_token else 0)
    assert result.target.name == ("blocks.1.norm1" if class_token else "blocks.1")
    assert_peaked(result.maps, VIT_SQUARE)


def test_raw_map_keeps_scale_and_predicted_class_is_default():
    model = BrightCNN()
    images = bright_square()
    images[1] *= 2.0  # twice as bright: same normalised map, twice the raw map
    result = gradcam(model, images)
    assert result.classes.tolist() == [0, 0]
    torch.testing.assert_close(result.maps[0], result.maps[1], atol=1e-5, rtol=0)
    assert float(result.raw[1].max()) == pytest.approx(2 * float(result.raw[0].max()), rel=1e-4)


def test_default_target_of_timm_cnn():
    model = timm.create_model("resnet10t", pretrained=False, num_classes=3)
    assert default_gradcam_target(model, (3, 32, 32)).name == "layer4"


def test_randomisation_changes_map_and_leaves_model_alone(device):
    torch.manual_seed(0)
    model = BrightCNN().to(device)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check = cascading_randomisation(model, bright_square(), classes=0, seed=0)
    assert check.steps == randomisation_steps(model) == ["head", "features.0"]
    assert check.spearman.shape == (2, 2) and check.maps.shape == (2, 2, H, W)
    assert not bool((check.spearman > 0.9).any()), check.spearman  # an unchanged map has rho = 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_randomisation_of_vit_is_top_down():
    model = bright_vit(class_token=True)
    steps = randomisation_steps(model)
    assert steps[0] == "head" and steps.index("blocks.1") < steps.index("blocks.0") < steps.index("patch_embed")
    assert steps[-2:] == ["cls_token", "pos_embed"]
    torch.manual_seed(0)
    images = bright_square(64, 96, VIT_SQUARE, batch=2) + 0.5 * torch.rand(2, 3, 64, 96)
    check = cascading_randomisation(model, images, classes=0)
    assert check.steps == steps
    # The map only changes sign with the head; it is a different map once the embedding is random.
    assert not bool((check.spearman[-1] > 0.9).any()), check.spearman


@pytest.mark.parametrize("classes, needle", [(3, "class index 3"), ([0, -1], "class index -1"), (7, "valid: 0 to 2")])
def test_bad_class_index_fails_before_running(classes, needle):
    model = BrightCNN()
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    with pytest.raises(FreqlensError, match=needle):
        gradcam(model, bright_square(), classes=classes)
    assert not calls


def test_class_count_must_match_images():
    with pytest.raises(FreqlensError, match="3 class indices for 2 images"):
        gradcam(BrightCNN(), bright_square(), classes=[0, 1, 2])


def test_class_range_is_read_off_models_without_num_classes():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    with pytest.raises(FreqlensError, match="5 classes"):
        gradcam(model, bright_square(), classes=5, target="0")


def test_unknown_layer_suggests_close_names():
    with pytest.raises(FreqlensError) as err:
        gradcam(BrightCNN(), bright_square(), classes=0, target="featurs.0")
    assert "featurs.0" in err.value.message and "features.0" in err.value.hint


def test_unknown_method():
    with pytest.raises(FreqlensError, match=re.escape("unknown Grad-CAM method 'gradcam+'")):
        gradcam(BrightCNN(), bright_square(), classes=0, method="gradcam+")


def test_runs_under_no_grad_and_inference_mode():
    model, images = BrightCNN(), bright_square()
    expected = gradcam(model, images, classes=0).maps
    with torch.no_grad():
        torch.testing.assert_close(gradcam(model, images, classes=0).maps, expected)
    with torch.inference_mode():
        frozen = bright_square()
        torch.testing.assert_close(gradcam(model, frozen, classes=0).maps, expected)


def test_bfloat16_autocast():
    model, images = BrightCNN(), bright_square()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = gradcam(model, images, classes=0)
    assert result.raw.dtype == torch.float32
    assert_peaked(result.maps)


def _snapshot(model: nn.Module):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
    )


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("method", ["gradcam", "scorecam"])
def test_state_restored_after_success(method):
    model = BrightCNN().train()
    model.head.bias.requires_grad_(False)
    model.features[0].weight.grad = torch.ones_like(model.features[0].weight)
    before = _snapshot(model)
    gradcam(model, bright_square(), classes=0, method=method)
    after = _snapshot(model)
    assert after[:2] == before[:2]
    assert all(a is b for a, b in zip(after[2], before[2], strict=True))
    assert _hook_count(model) == 0


def test_state_restored_and_hooks_removed_after_exception():
    model = BrightCNN().train()
    model.head.bias.requires_grad_(False)
    before = _snapshot(model)
    wrong_layout = ProbePoint("features.2", "NLC", reduction=4)  # its output is 4-D: fails inside the hook
    with pytest.raises(FreqlensError, match="declared NLC"):
        gradcam(model, bright_square(), classes=0, target=wrong_layout)
    assert _snapshot(model)[:2] == before[:2]
    assert _hook_count(model) == 0


def test_index_error_is_not_swallowed():
    class Broken(BrightCNN):
        def forward(self, x):
            raise IndexError("boom")

    model = Broken()
    with pytest.raises(IndexError, match="boom"):
        gradcam(model, bright_square(), classes=0, target=ProbePoint("features.2"))
    assert _hook_count(model) == 0


def test_methods_table_is_complete():
    assert set(METHODS) == {"gradcam", "gradcam++", "scorecam", "xgradcam", "eigencam", "layercam"}


# -- zoo models: their declared target and layout, random weights, tiny widths ----------------------
ZOO = {
    "spartan_t": dict(depths=(1, 1, 2, 1), dims=(16, 16, 32, 32), expand_ratios=(4, 2, 2, 2)),  # NCHW
    "spatialmamba_t": dict(depths=(1, 1, 2, 1), dims=8),  # NHWC
    "fdam_deit_t": dict(embed_dim=32, num_heads=2, img_size=64),  # NLC, no class token
}


def _zoo(name: str) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=10, **ZOO[name])


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_use_their_declared_target(name):
    model = _zoo(name)
    result = gradcam(model, torch.rand(1, 3, 64, 64))
    assert result.target == model.gradcam_target
    assert result.maps.shape == (1, 64, 64) and torch.isfinite(result.raw).all()
    assert float(result.raw.std()) > 0, "the map should not be constant"


def test_randomisation_changes_a_zoo_models_map():
    model = _zoo("spatialmamba_t")
    check = cascading_randomisation(model, torch.rand(1, 3, 64, 64))
    assert float(check.original.raw.std()) > 0
    assert not bool((check.spearman[-1] > 0.9).any()), check.spearman


def test_randomisation_step_names_are_checked_first():
    with pytest.raises(FreqlensError) as err:
        cascading_randomisation(BrightCNN(), bright_square(), classes=0, steps=["haed"])
    assert "head" in err.value.hint
