"""Small models for the synthetic probe tasks, registered with timm as ``probe_cnn`` and ``probe_vit``.

Both take 32x32 RGB "pixels" of ``freqlens.probes.task`` normalised by their cfg's mean/std, and have
``K = 4`` classes. The pretrained tags ``.hf`` / ``.lf`` point at the checkpoints shipped in
``freqlens/data/checkpoints`` (see its README for recipes and accuracies), so
``timm.create_model("probe_cnn.hf", pretrained=True)`` loads them from disk; nothing downloads.

* ``probe_cnn``: a 5x5 stride-1 stem (so its filters can resolve the task's bands, and a figure can
  show them) and three stride-2 3x3 conv stages, each conv + BatchNorm + ReLU; average pool and a
  linear head. About 61k parameters.
* ``probe_vit``: timm's ``VisionTransformer`` with 4x4 patches (an 8x8 token grid plus one class
  token), width 64, depth 4, 4 heads, MLP ratio 2. About 140k parameters.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import VisionTransformer

from freqlens.lens.probes import ProbePoint
from freqlens.probes.task import IMAGE_SIZE, IN_CHANS, NUM_CLASSES, PIXEL_MEAN, PIXEL_STD

__all__ = ["ProbeCNN", "ProbeViT"]

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


class ConvBnAct(nn.Module):
    """Conv (no bias) + BatchNorm + ReLU, the CNN's only building block.

    A module rather than an ``nn.Sequential``, so timm's feature wrapper sees each block whole.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ProbeCNN(nn.Module):
    """A stride-1 stem and stride-2 stages; small enough to train in minutes on two CPU cores.

    Args:
        num_classes: classifier outputs (0 for a feature extractor).
        in_chans: input channels.
        widths: output channels of the stem and of each stage.
        stem_kernel: stem kernel size (odd).
        drop_rate: dropout before the head.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        in_chans: int = IN_CHANS,
        widths: tuple[int, ...] = (16, 32, 64, 64),
        stem_kernel: int = 5,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        if stem_kernel % 2 != 1:
            raise ValueError(f"stem_kernel must be odd, got {stem_kernel}")
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = widths[-1]
        self.stem = ConvBnAct(in_chans, widths[0], stem_kernel, stride=1)
        self.feature_info = [dict(num_chs=widths[0], reduction=1, module="stem")]
        self.probe_points = [ProbePoint("stem", "NCHW", reduction=1, kind="stem")]
        stages = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            stages.append(ConvBnAct(cin, cout, 3, stride=2))
            self.feature_info.append(dict(num_chs=cout, reduction=2 ** (i + 1), module=f"stages.{i}"))
            self.probe_points.append(ProbePoint(f"stages.{i}", "NCHW", reduction=2 ** (i + 1), kind="stage"))
        self.stages = nn.Sequential(*stages)
        self.gradcam_target = self.probe_points[-1]
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (B, C, H/8, W/8)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x.mean(dim=(2, 3)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ProbeViT(VisionTransformer):
    """timm's ViT at probe size, with freqlens probe points (one class token, 4x4 patches).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        img_size: input height and width.
        patch_size: patch height and width.
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over ``embed_dim``.
        drop_rate: dropout before the head.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        in_chans: int = IN_CHANS,
        img_size: int | tuple[int, int] = IMAGE_SIZE,
        patch_size: int = 4,
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        drop_rate: float = 0.0,
    ):
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=num_classes,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            drop_rate=drop_rate,
        )
        self.probe_points = [
            ProbePoint(f"blocks.{i}", "NLC", reduction=patch_size, prefix_tokens=self.num_prefix_tokens)
            for i in range(depth)
        ]
        # the class token pools the last block, so its patch tokens get no gradient: look at its input
        last = depth - 1
        self.gradcam_target = ProbePoint(f"blocks.{last}.norm1", "NLC", reduction=patch_size,
                                         prefix_tokens=self.num_prefix_tokens)


def _create_probe_cnn(variant: str, pretrained: bool = False, **kwargs) -> ProbeCNN:
    return build_model_with_cfg(
        ProbeCNN, variant, pretrained, feature_cfg=dict(out_indices=(0, 1, 2, 3), flatten_sequential=True), **kwargs
    )


def _create_probe_vit(variant: str, pretrained: bool = False, **kwargs) -> ProbeViT:
    return build_model_with_cfg(
        ProbeViT, variant, pretrained, feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"), **kwargs
    )


def _cfg(checkpoint: str, first_conv: str, classifier: str, fixed_input_size: bool) -> dict:
    return {
        "file": str(CHECKPOINT_DIR / checkpoint),
        "num_classes": NUM_CLASSES,
        "input_size": (IN_CHANS, IMAGE_SIZE, IMAGE_SIZE),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "fixed_input_size": fixed_input_size,  # timm then passes img_size to the model
        "mean": (PIXEL_MEAN,) * IN_CHANS,
        "std": (PIXEL_STD,) * IN_CHANS,
        "first_conv": first_conv,
        "classifier": classifier,
        "license": "apache-2.0",
    }


default_cfgs = generate_default_cfgs({
    "probe_cnn.hf": _cfg("probe_cnn_hf.safetensors", "stem.conv", "head", fixed_input_size=False),
    "probe_cnn.lf": _cfg("probe_cnn_lf.safetensors", "stem.conv", "head", fixed_input_size=False),
    "probe_vit.hf": _cfg("probe_vit_hf.safetensors", "patch_embed.proj", "head", fixed_input_size=True),
    "probe_vit.lf": _cfg("probe_vit_lf.safetensors", "patch_embed.proj", "head", fixed_input_size=True),
})


@register_model
def probe_cnn(pretrained: bool = False, **kwargs) -> ProbeCNN:
    """Probe CNN (5x5 stem, widths 16-32-64-64); tags ``.hf`` and ``.lf`` are the shipped weights."""
    return _create_probe_cnn("probe_cnn", pretrained, **kwargs)


@register_model
def probe_vit(pretrained: bool = False, **kwargs) -> ProbeViT:
    """Probe ViT (patch 4, width 64, depth 4, 4 heads); tags ``.hf`` and ``.lf`` are the shipped weights."""
    return _create_probe_vit("probe_vit", pretrained, **kwargs)
