"""Build a model from a name and load its checkpoint: the one way the API, CLI and notebooks get a model.

A name is a timm registry name (the zoo is registered by ``import freqlens``), ``pkg.module:factory`` or
``path/to/file.py:factory``. Without a checkpoint the weights are random, and the result says so.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Callable

import timm
import torch
from torch import nn

from freqlens.errors import FreqlensError, UsageError
from freqlens.io.checkpoints import LoadedCheckpoint, WeightsChoice, apply_to_model, load_checkpoint


@dataclasses.dataclass
class LoadedModel:
    """A model in eval mode on its device, with where its weights came from."""

    model: nn.Module
    name: str
    checkpoint: LoadedCheckpoint | None  # its provenance; the tensors are dropped once loaded into the model
    given_weights: bool = False  # an nn.Module passed in: its weights are whatever the caller set

    @property
    def random_weights(self) -> bool:
        return self.checkpoint is None and not self.given_weights

    def data_config(self) -> dict[str, Any]:
        """The model's own eval preprocessing (timm's resolution of its pretrained_cfg)."""
        return timm.data.resolve_data_config({}, model=self.model)

    def check_input(self, input_size: tuple[int, int, int] | None = None, hint: str | None = None) -> None:
        """Run one zero image of ``input_size`` (default: the model's own) through the model, so that a model
        that cannot take it fails before any work, with the fix, instead of mid-run with a traceback."""
        from freqlens.lens.probes import trial_forward

        own = tuple(self.data_config()["input_size"])
        size = tuple(input_size) if input_size is not None else own
        try:
            trial_forward(self.model, (), size)
        except Exception as exc:  # whatever the model raises, the user needs the same fix
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            which = "its input size" if size == own else f"its own being {'x'.join(map(str, own[1:]))}"
            raise FreqlensError(
                f"{self.name} fails on a 1x{'x'.join(map(str, size))} input, {which}: {detail}",
                hint=hint or "the input size and normalisation come from the model's pretrained_cfg: a factory "
                             "sets model.pretrained_cfg = dict(input_size=(3, H, W), mean=(...), std=(...)) as "
                             "timm models do",
            ) from exc

    def provenance(self) -> dict[str, Any]:
        cfg = getattr(self.model, "pretrained_cfg", None) or {}
        return {
            "name": self.name, "class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "architecture": cfg.get("architecture"), "num_params": sum(p.numel() for p in self.model.parameters()),
            "weights": ("random (no checkpoint)" if self.random_weights else
                        "as passed in (nn.Module)" if self.checkpoint is None else self.checkpoint.weights),
            "checkpoint": None if self.checkpoint is None else self.checkpoint.provenance(),
        }


def load_model(name: str, ckpt: str | Path | None = None, *, weights: WeightsChoice = "auto", trust: bool = False,
               device: str | torch.device = "cpu") -> LoadedModel:
    """Build ``name`` and load ``ckpt`` into it (strict, after the family's checkpoint filter).

    The classifier size follows the checkpoint when it has one (a 10-class fine-tune loads into a
    10-class head). Without ``ckpt`` a warning says the weights are random. A model that cannot take its
    own input size fails here (:meth:`LoadedModel.check_input`).
    """
    factory = resolve_factory(name)
    checkpoint = load_checkpoint(ckpt, weights=weights, trust=trust) if ckpt is not None else None
    kwargs = _head_kwargs(name, checkpoint) if checkpoint is not None and _is_registered(name) else {}
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise FreqlensError(f"model factory {name!r} returned {type(model).__name__}, not an nn.Module")
    if checkpoint is not None:
        apply_to_model(model, checkpoint)
        checkpoint = dataclasses.replace(checkpoint, state_dict={})  # the model holds the weights now
    else:
        warnings.warn(f"{name}: no checkpoint given, the weights are RANDOM; results describe an untrained network",
                      stacklevel=2)
    model.eval().to(device)
    loaded = LoadedModel(model, name, checkpoint)
    loaded.check_input()
    return loaded


def resolve_factory(name: str) -> Callable[..., nn.Module]:
    """The callable that builds ``name`` (registry name, ``module:factory`` or ``file.py:factory``)."""
    if ":" in name:
        target, _, attr = name.rpartition(":")
        module = _import_target(target)
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise UsageError(f"{target!r} has no callable {attr!r}", hint=f"define {attr}() returning the model")
        return factory
    if _is_registered(name):
        return lambda **kwargs: timm.create_model(name, pretrained=False, **kwargs)
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    raise UsageError(f"unknown model {name!r}",
                     hint=f"did you mean {', '.join(close)}?" if close else "list names with `freqlens models [FILTER]`")


def _is_registered(name: str) -> bool:
    return timm.is_model(name)


def _import_target(target: str) -> Any:
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"model file {target!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"freqlens_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise UsageError(f"cannot import model module {target!r}: {exc}") from exc


def _head_kwargs(name: str, checkpoint: LoadedCheckpoint) -> dict[str, int]:
    """``num_classes`` as the checkpoint's classifier has it, when that differs from the default."""
    cfg = timm.models.get_pretrained_cfg(name) if "." not in name else None
    classifier = getattr(cfg, "classifier", None) if cfg is not None else None
    default_classes = getattr(cfg, "num_classes", None) if cfg is not None else None
    names = [classifier] if isinstance(classifier, str) else list(classifier or [])
    for head in names:
        weight = checkpoint.state_dict.get(f"{head}.weight")
        if weight is not None and weight.dim() >= 1 and weight.shape[0] != default_classes:
            return {"num_classes": int(weight.shape[0])}
    return {}
