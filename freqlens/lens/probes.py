"""Probe points: the named places in a model where a lens looks, and their tensor layouts.

A probe point is a module path (as `nn.Module.get_submodule` takes it) plus the layout of that
module's output. Zoo models declare theirs as data (`model.probe_points`, next to `feature_info`);
for any other model `default_probe_points` derives them from timm's `feature_info` or the module tree.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from typing import Literal, Sequence

import torch
from torch import nn

from freqlens.errors import FreqlensError

Layout = Literal["NCHW", "NHWC", "NLC"]
LAYOUTS: tuple[str, ...] = ("NCHW", "NHWC", "NLC")


@dataclasses.dataclass(frozen=True)
class ProbePoint:
    """One module output to analyse.

    Args:
        name: module path, e.g. ``stages.2.blocks.5`` (``""`` is the model itself).
        layout: ``NCHW`` / ``NHWC`` feature maps, or ``NLC`` token sequences.
        reduction: input pixels per output pixel (the patch size of a ViT). For ``NLC`` it gives the
            token grid, ``(H // reduction, W // reduction)`` of the input, never ``sqrt(N)``.
        prefix_tokens: tokens before the grid (class / distillation / register tokens), ``NLC`` only.
        kind: what the output is (``block``, ``stage``, ``mixer``, ...), for grouping in figures.
    """

    name: str
    layout: Layout = "NCHW"
    reduction: int | None = None
    prefix_tokens: int = 0
    kind: str = "block"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"probe point {self.name!r}: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout == "NLC" and not self.reduction:
            raise ValueError(f"probe point {self.name!r}: an NLC layout needs `reduction` to find its token grid")
        if self.prefix_tokens < 0:
            raise ValueError(f"probe point {self.name!r}: prefix_tokens must be >= 0, got {self.prefix_tokens}")

    def token_grid(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        """The (H, W) token grid of an ``NLC`` output for an input of size ``input_hw``."""
        assert self.reduction is not None
        return input_hw[0] // self.reduction, input_hw[1] // self.reduction

    def to_nchw(self, x: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
        """Return this point's output as a (B, C, H, W) view, prefix tokens dropped."""
        if self.layout == "NCHW":
            _expect_dims(self, x, 4)
            return x
        if self.layout == "NHWC":
            _expect_dims(self, x, 4)
            return x.permute(0, 3, 1, 2)
        _expect_dims(self, x, 3)
        gh, gw = self.token_grid(input_hw)
        b, n, c = x.shape
        if n != self.prefix_tokens + gh * gw:
            raise FreqlensError(
                f"probe point {self.name!r}: {n} tokens do not match {self.prefix_tokens} prefix tokens + a "
                f"{gh}x{gw} grid (input {input_hw[0]}x{input_hw[1]}, reduction {self.reduction})",
                hint="declare the probe point's prefix_tokens/reduction to match the model",
            )
        return x[:, self.prefix_tokens :].reshape(b, gh, gw, c).permute(0, 3, 1, 2)  # a view, no copy


def _expect_dims(point: ProbePoint, x: torch.Tensor, ndim: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != ndim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise FreqlensError(
            f"probe point {point.name!r} declared {point.layout} but its output is {shape}",
            hint="choose a module whose output is a single feature tensor (see `freqlens probes --model ...`)",
        )


def select_probe_points(points: Sequence[ProbePoint], patterns: Sequence[str]) -> list[ProbePoint]:
    """Keep the points whose name matches any glob pattern; an unmatched pattern is an error."""
    if not patterns:
        return list(points)
    chosen = []
    for pattern in patterns:
        hits = [p for p in points if fnmatch.fnmatchcase(p.name, pattern)]
        if not hits:
            raise FreqlensError(
                f"probe pattern {pattern!r} matches none of the model's probe points",
                hint=f"known points: {_preview([p.name for p in points])}",
            )
        chosen.extend(h for h in hits if h not in chosen)
    return sorted(chosen, key=points.index)


def _preview(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def default_probe_points(model: nn.Module, input_size: tuple[int, int, int]) -> list[ProbePoint]:
    """Probe points of ``model``: its own declaration, else timm's feature_info, else its module tree.

    Layouts of undeclared points are read off one trial forward of a zero image (batch 1) of
    ``input_size``: 4-D outputs are NCHW (NHWC when the channel count sits last), 3-D outputs are
    token sequences whose grid comes from timm's patch size and prefix-token count.
    """
    declared = getattr(model, "probe_points", None)
    if declared:
        return list(declared)
    info = _feature_info(model)
    if info:
        names = [d["module"] for d in info]
        channels = [d.get("num_chs") for d in info]
        reductions = [d.get("reduction") for d in info]
        if len(names) < 6:  # stage-level info only (CNNs): look at every block of each stage
            names, channels, reductions = _expand_stages(model, names, channels, reductions)
        names, reductions = _stem_through_pool(model, names, reductions)
    else:
        names = _tree_candidates(model)
        channels = reductions = [None] * len(names)
    shapes = trial_forward(model, names, input_size)
    points = []
    for name, ch, red in zip(names, channels, reductions, strict=True):
        shape = shapes.get(name)
        if shape is None:
            continue
        point = _infer_point(model, name, shape, ch, red, input_size)
        if point is not None:
            points.append(point)
    if not points:
        raise FreqlensError(
            f"found no module of {type(model).__name__} with a spatial output",
            hint="name the modules to probe with --probe PATTERN",
        )
    return points


def probe_points_for(model: nn.Module, names: Sequence[str], input_size: tuple[int, int, int]) -> list[ProbePoint]:
    """Probe points for explicit module names, layouts read off a trial forward."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        import difflib

        close = difflib.get_close_matches(missing[0], list(modules), n=3)
        raise FreqlensError(
            f"model has no module {missing[0]!r}",
            hint=f"did you mean {', '.join(close)}?" if close else "list module paths with model.named_modules()",
        )
    shapes = trial_forward(model, list(names), input_size)
    points = []
    for name in names:
        point = _infer_point(model, name, shapes.get(name), None, None, input_size)
        if point is None:
            raise FreqlensError(
                f"module {name!r} outputs {shapes.get(name)}, not a feature map or token sequence",
                hint="choose a module whose output is (B, C, H, W), (B, H, W, C) or (B, N, C)",
            )
        points.append(point)
    return points


def _feature_info(model: nn.Module) -> list[dict]:
    """timm's feature_info as a list of dicts, whether the model keeps a list or a FeatureInfo."""
    info = getattr(model, "feature_info", None)
    if info is None:
        return []
    if hasattr(info, "get_dicts"):
        return list(info.get_dicts())
    return [d for d in info if isinstance(d, dict) and d.get("module")]


def _expand_stages(model, names, channels, reductions):
    """Replace each stage by its blocks (``stage.blocks.i`` or ``stage.i``), keeping the stage's numbers."""
    out_n, out_c, out_r = [], [], []
    for name, ch, red in zip(names, channels, reductions, strict=True):
        module = model.get_submodule(name)
        blocks = getattr(module, "blocks", None)
        if isinstance(blocks, nn.Sequential) and len(blocks) > 1:
            children = [f"{name}.blocks.{c}" for c, _ in blocks.named_children()]
        elif isinstance(module, nn.Sequential) and len(module) > 1:
            children = [f"{name}.{c}" for c, _ in module.named_children()]
        else:
            children = [name]
        out_n += children
        out_c += [ch] * len(children)
        out_r += [red] * len(children)
    return out_n, out_c, out_r


def _stem_through_pool(model, names, reductions):
    """Move a stem point past the pooling layer that follows it (timm's ResNet ``act1`` -> ``maxpool``).

    timm marks the stem before its pool, for feature pyramids; the reference recipe (Park & Kim's ResNet
    split) ends the stem block with the pool, so that, like every other point, it is what the next block
    reads. The reduction is then read off the trial forward.
    """
    children = [name for name, _ in model.named_children()]
    out_n, out_r = [], []
    for name, red in zip(names, reductions, strict=True):
        if name in children[:-1]:
            following = children[children.index(name) + 1]
            pool = model.get_submodule(following)
            if isinstance(pool, nn.Sequential) and len(pool):  # a pool with anti-aliasing (timm's aa_layer)
                pool = pool[0]
            if isinstance(pool, (nn.MaxPool2d, nn.AvgPool2d)):
                name, red = following, None
        out_n.append(name)
        out_r.append(red)
    return out_n, out_r


def _tree_candidates(model: nn.Module) -> list[str]:
    """Children of the root, with sequential containers expanded one level (torchvision-style nets)."""
    names = []
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
            names.extend(f"{name}.{sub}" for sub, _ in child.named_children())
        else:
            names.append(name)
    return names


@torch.no_grad()
def trial_forward(model: nn.Module, names: Sequence[str], input_size: tuple[int, int, int]) -> dict[str, tuple]:
    """One zero image of ``input_size`` through ``model`` in eval mode (its state restored after): the output
    shape of each module in ``names``."""
    from freqlens.lens.lens import preserved_state

    shapes: dict[str, tuple] = {}
    handles = []

    def make_hook(name):
        def hook(_module, _inputs, output):
            shapes[name] = tuple(output.shape) if isinstance(output, torch.Tensor) else None

        return hook

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    with preserved_state(model):
        model.eval()
        try:
            for name in names:
                handles.append(model.get_submodule(name).register_forward_hook(make_hook(name)))
            model(torch.zeros((1, *input_size), device=device, dtype=dtype))
        finally:
            for h in handles:
                h.remove()
    return shapes


def _infer_point(model, name, shape, channels, reduction, input_size) -> ProbePoint | None:
    if not shape:
        return None
    h_in, w_in = input_size[1:]
    if len(shape) == 4:
        nhwc = channels is not None and shape[3] == channels and shape[1] != channels
        hw = shape[1:3] if nhwc else shape[2:]
        red = reduction or max(1, round(h_in / hw[0]))
        return ProbePoint(name, "NHWC" if nhwc else "NCHW", reduction=red)
    if len(shape) == 3:
        patch = _patch_size(model) or reduction
        if not patch:
            return None
        prefix = int(getattr(model, "num_prefix_tokens", 0))
        if shape[1] != prefix + (h_in // patch) * (w_in // patch):
            return None
        return ProbePoint(name, "NLC", reduction=patch, prefix_tokens=prefix)
    return None


def _patch_size(model: nn.Module) -> int | None:
    embed = getattr(model, "patch_embed", None)
    size = getattr(embed, "patch_size", None)
    if size is None:
        return None
    return int(size[0]) if isinstance(size, (tuple, list)) else int(size)
