"""Grad-CAM maps at a probe point, and the Adebayo cascading-randomisation sanity check.

A wrapper over pytorch-grad-cam (``pytorch_grad_cam``) that removes its traps (ecosystem notes §2):
the target layer is a :class:`ProbePoint`, so its ``reshape_transform`` follows the declared layout
(token grid from the input size and the reduction, prefix tokens dropped, NHWC transposed); class
indices are checked against the model's classes before anything runs; gradients are enabled even under
``torch.no_grad()`` / ``torch.inference_mode()``; hooks are released and the model's train/eval flags,
``requires_grad`` flags and ``.grad`` tensors restored, also after an exception (which is never swallowed,
unlike ``BaseCAM.__exit__`` does with ``IndexError``). Both the raw map and the per-image [0, 1] map are
returned, so maps can be compared across models.

Reference: Selvaraju et al., "Grad-CAM" (ICCV 2017); Adebayo et al., "Sanity Checks for Saliency Maps"
(NeurIPS 2018); repo ``jacobgil/pytorch-grad-cam`` (``base_cam.py``, ``activations_and_gradients.py``).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import warnings
from typing import Iterator, Sequence

import numpy as np
import pytorch_grad_cam
import torch
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from scipy import stats
from torch import nn

from freqlens.errors import FreqlensError
from freqlens.lens.lens import preserved_state
from freqlens.lens.probes import ProbePoint, default_probe_points, probe_points_for

METHODS: dict[str, type[BaseCAM]] = {
    "gradcam": pytorch_grad_cam.GradCAM,
    "gradcam++": pytorch_grad_cam.GradCAMPlusPlus,
    "scorecam": pytorch_grad_cam.ScoreCAM,
    "xgradcam": pytorch_grad_cam.XGradCAM,
    "eigencam": pytorch_grad_cam.EigenCAM,
    "layercam": pytorch_grad_cam.LayerCAM,
}

Classes = int | Sequence[int] | torch.Tensor | None


@dataclasses.dataclass
class CamResult:
    """Class-activation maps of a batch, upsampled (bilinear) to the input size."""

    maps: torch.Tensor  # (B, H, W) float32, each image min-max scaled to [0, 1]
    raw: torch.Tensor  # (B, H, W) float32, the ReLU'd map before scaling: comparable across models
    classes: torch.Tensor  # (B,) int64, the class each map explains
    method: str
    target: ProbePoint


@dataclasses.dataclass
class RandomisationCheck:
    """Maps after each cumulative randomisation step, and their rank correlation with the original."""

    steps: list[str]  # after step i, the parameters of steps[: i + 1] are random
    spearman: torch.Tensor  # (S, B) float64 Spearman rho of each image's raw map vs the original (nan: constant map)
    maps: torch.Tensor  # (S, B, H, W) float32 [0, 1] maps after each step
    original: CamResult


def gradcam(
    model: nn.Module,
    images: torch.Tensor,
    classes: Classes = None,
    target: ProbePoint | str | None = None,
    method: str = "gradcam",
) -> CamResult:
    """Compute class-activation maps of ``images`` at one probe point.

    Args:
        model: a classifier returning (B, num_classes) logits; it is left as it was found.
        images: (B, C, H, W) model inputs (already normalised).
        classes: the class to explain, one for all images or one per image; ``None`` explains
            each image's predicted class.
        target: the layer, as a probe point or module path; ``None`` picks
            :func:`default_gradcam_target`.
        method: one of :data:`METHODS`.

    Returns:
        A :class:`CamResult`.

    Raises:
        FreqlensError: unknown method or layer, a class index out of range, a class list whose length
            differs from the batch, or a layer whose output gets no gradient.
    """
    cam_class = _method(method)
    images = _on_model_device(model, images)
    class_idx = _resolve_classes(model, images, classes)
    point = resolve_target(model, target, tuple(images.shape[1:]))
    with _grad_cam(model, cam_class, point, tuple(images.shape[-2:])) as cam:
        x = images.detach().clone().requires_grad_(cam.uses_gradients)
        raw_grid = cam(x, [ClassifierOutputTarget(int(c)) for c in class_idx])
    raw = _upsample(torch.from_numpy(np.ascontiguousarray(raw_grid)).float(), tuple(images.shape[-2:]))
    return CamResult(_min_max(raw), raw, class_idx, method, point)


def cascading_randomisation(
    model: nn.Module,
    images: torch.Tensor,
    classes: Classes = None,
    target: ProbePoint | str | None = None,
    method: str = "gradcam",
    steps: Sequence[str] | None = None,
    seed: int = 0,
) -> RandomisationCheck:
    """Re-initialise a deep copy of ``model`` top-down, one step at a time, and track the map.

    A map that explains the model must change once the weights it depends on are random (Adebayo et
    al. 2018, cascading randomisation). Each step re-initialises one module group (``reset_parameters``
    where the module has one, else a truncated normal of std 0.02 as timm initialises tokens) in a
    seeded, forked RNG; the class explained stays the original one. ``model`` itself is not touched.

    Args:
        steps: module paths (or root parameter names) to randomise in order; ``None`` takes
            :func:`randomisation_steps`, the output side first.
        seed: seed of the re-initialisation.

    Returns:
        A :class:`RandomisationCheck`.
    """
    images = _on_model_device(model, images)
    groups = list(steps) if steps is not None else randomisation_steps(model)
    if not groups:
        raise FreqlensError("cascading randomisation needs at least one step", hint="leave steps=None for all layers")
    known = set(dict(model.named_modules())) | set(dict(model.named_parameters(recurse=False)))
    for step in groups:
        if step not in known:
            probe_points_for(model, [step], tuple(images.shape[1:]))  # raises, naming close matches
    original = gradcam(model, images, classes, target, method)
    copied = copy.deepcopy(model)
    parts = dict(copied.named_modules()) | dict(copied.named_parameters(recurse=False))
    maps, rhos = [], []
    devices = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for step in groups:
            _reinitialise(parts[step])
            result = gradcam(copied, images, original.classes, original.target, method)
            maps.append(result.maps)
            rhos.append([_spearman(a, b) for a, b in zip(original.raw, result.raw, strict=True)])
    return RandomisationCheck(groups, torch.tensor(rhos, dtype=torch.float64), torch.stack(maps), original)


def default_gradcam_target(model: nn.Module, input_size: tuple[int, int, int]) -> ProbePoint:
    """The layer Grad-CAM looks at by default: ``model.gradcam_target``, else the last probe point.

    For a ViT that classifies from its class token, the last block's output reaches the logits only
    through that token, so its patch tokens get no gradient; the last block's ``norm1`` output (which
    feeds the attention that fills the class token) is used instead, as in pytorch-grad-cam's ViT example.
    """
    declared = getattr(model, "gradcam_target", None)
    if declared is not None:
        return declared
    last = default_probe_points(model, input_size)[-1]
    norm1 = f"{last.name}.norm1"
    if last.layout == "NLC" and getattr(model, "global_pool", None) == "token" and norm1 in dict(model.named_modules()):
        return dataclasses.replace(last, name=norm1, kind="norm")
    return last


def resolve_target(model: nn.Module, target: ProbePoint | str | None, input_size: tuple[int, int, int]) -> ProbePoint:
    """Turn ``target`` into a probe point of ``model``; unknown names fail with close matches."""
    if target is None:
        return default_gradcam_target(model, input_size)
    if isinstance(target, str):
        return probe_points_for(model, [target], input_size)[0]
    if target.name not in dict(model.named_modules()):
        probe_points_for(model, [target.name], input_size)  # raises, naming close matches
    return target


def randomisation_steps(model: nn.Module) -> list[str]:
    """Module groups holding parameters, output side first: children of the root (sequential
    containers split into their items) in reverse order, then the root's own parameters (tokens,
    position embeddings), which sit at the input side."""
    groups = []
    for name, child in model.named_children():
        items = child.named_children() if isinstance(child, (nn.Sequential, nn.ModuleList)) else [("", child)]
        for sub, module in items:
            if any(True for _ in module.parameters()):
                groups.append(f"{name}.{sub}" if sub else name)
    return groups[::-1] + [name for name, _ in model.named_parameters(recurse=False)]


# -- pytorch-grad-cam plumbing ---------------------------------------------------------------------
def _method(method: str) -> type[BaseCAM]:
    if method not in METHODS:
        raise FreqlensError(f"unknown Grad-CAM method {method!r}", hint=f"choose one of {', '.join(METHODS)}")
    cls = METHODS[method]
    # One class per method, overriding only the per-layer step so the raw map comes back unscaled.
    return type(f"Raw{cls.__name__}", (_RawMap, cls), {})


class _RawMap(BaseCAM):
    """Mixin: return the ReLU'd map of the single target layer at its own resolution, unscaled."""

    def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
        acts = self.activations_and_grads.activations
        grads = self.activations_and_grads.gradients
        if len(acts) != 1:
            raise FreqlensError(
                f"the Grad-CAM layer ran {len(acts)} times in one forward pass",
                hint="choose a module that runs once per forward pass",
            )
        if self.uses_gradients and len(grads) != 1:
            raise FreqlensError(
                "the Grad-CAM layer's output received no gradient from the class score",
                hint="choose a layer the logits depend on (for class-token ViTs: blocks.<last>.norm1)",
            )
        grad = grads[0].numpy() if grads else None
        cam = self.get_cam_image(input_tensor, self.target_layers[0], targets, acts[0].numpy(), grad, eigen_smooth)
        return [np.maximum(cam, 0)]

    def aggregate_multi_layers(self, cam_per_target_layer):
        return cam_per_target_layer[0]


@contextlib.contextmanager
def _grad_cam(
    model: nn.Module, cam_class: type[BaseCAM], point: ProbePoint, input_hw: tuple[int, int]
) -> Iterator[BaseCAM]:
    """A CAM object whose hooks, and every flag it or backward touches, are undone on exit."""
    if any(p.is_inference() for p in model.parameters()):
        raise FreqlensError(
            "the model's parameters were created under torch.inference_mode() and cannot take gradients",
            hint="build or load the model outside inference mode",
        )

    def reshape(t: torch.Tensor) -> torch.Tensor:
        t = point.to_nchw(t, input_hw)
        return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t  # numpy has no bfloat16

    grads = [(p, p.grad) for p in model.parameters()]
    with contextlib.ExitStack() as stack:
        stack.enter_context(preserved_state(model))
        stack.callback(_restore_grads, grads)
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        for p in model.parameters():
            p.requires_grad_(False)  # gradients flow from the input only: the caller's .grad stays as is
        cam = cam_class(model, [model.get_submodule(point.name)], reshape_transform=reshape)
        # Released by the stack, not by ``with cam``: BaseCAM.__exit__ swallows IndexError.
        stack.callback(cam.activations_and_grads.release)
        yield cam


def _restore_grads(grads: list[tuple[nn.Parameter, torch.Tensor | None]]) -> None:
    for param, grad in grads:
        param.grad = grad


# -- checks and small helpers ----------------------------------------------------------------------
def _on_model_device(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise FreqlensError(f"Grad-CAM needs a non-empty (B, C, H, W) image batch, got {shape}")
    if not images.is_floating_point():
        raise FreqlensError(f"Grad-CAM needs floating-point images, got {images.dtype}", hint="normalise images first")
    param = next(model.parameters(), None)
    if param is None:
        raise FreqlensError(f"Grad-CAM needs a model with parameters; {type(model).__name__} has none")
    return images.to(param.device)


def _resolve_classes(model: nn.Module, images: torch.Tensor, classes: Classes) -> torch.Tensor:
    """Validate ``classes`` against the model's output size before any gradient pass; (B,) int64."""
    batch = images.shape[0]
    if classes is None:
        logits = _logits(model, images)
        return logits.argmax(dim=-1).cpu()
    if isinstance(classes, bool) or (isinstance(classes, torch.Tensor) and classes.dtype == torch.bool):
        raise FreqlensError(f"class indices must be integers, got {classes!r}")
    idx = torch.as_tensor(classes).cpu()
    if idx.is_floating_point() or idx.is_complex() or idx.dim() > 1:
        raise FreqlensError(f"class indices must be an integer or a 1-D list of integers, got {classes!r}")
    if idx.dim() == 0:
        idx = idx.expand(batch)
    elif idx.numel() != batch:
        raise FreqlensError(
            f"got {idx.numel()} class indices for {batch} images",
            hint="give one class index for all images or exactly one per image",
        )
    num_classes = getattr(model, "num_classes", None)
    if not isinstance(num_classes, int) or num_classes <= 0:
        num_classes = _logits(model, images[:1]).shape[-1]
    bad = [int(c) for c in idx if not 0 <= int(c) < num_classes]
    if bad:
        raise FreqlensError(
            f"class index {bad[0]} is out of range: the model has {num_classes} classes (valid: 0 to {num_classes - 1})"
        )
    return idx.to(torch.int64).clone()


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with preserved_state(model), torch.no_grad():
        model.eval()
        out = model(images)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[-1] == 0:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise FreqlensError(
            f"Grad-CAM needs (B, num_classes) logits, the model returned {shape}",
            hint="use a model with a classifier head (num_classes > 0)",
        )
    return out


def _upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return nn.functional.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _min_max(cam: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1] by its min and max (a constant map becomes 0)."""
    shifted = cam - cam.flatten(1).min(dim=1).values[:, None, None]
    peak = shifted.flatten(1).max(dim=1).values[:, None, None]
    return torch.where(peak > 0, shifted / peak.clamp_min(torch.finfo(cam.dtype).tiny), 0.0)


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(a.flatten().numpy(), b.flatten().numpy()).statistic)


@torch.no_grad()
def _reinitialise(target: nn.Module | nn.Parameter) -> None:
    if isinstance(target, nn.Parameter):
        nn.init.trunc_normal_(target, std=0.02)
        return
    for module in target.modules():
        own = list(module.parameters(recurse=False))
        if not own:
            continue
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
        else:
            for param in own:
                nn.init.trunc_normal_(param, std=0.02)
