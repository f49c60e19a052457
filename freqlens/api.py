"""The Python API: one call per analysis, the same calls the CLI and notebooks make.

Example:
    >>> import freqlens.api as fl                                          # doctest: +SKIP
    >>> report = fl.spectrum("deit_small_patch16_224", images="val/", limit=64)  # doctest: +SKIP
    >>> report.result["blocks.11"].delta_log_amplitude                      # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import fnmatch
import warnings
from pathlib import Path
from typing import Any, Sequence

import timm
import torch
from torch import nn

from freqlens.errors import FreqlensError
from freqlens.io.images import ImageSet, find_images, sample_images_dir
from freqlens.io.outputs import atomic_output_dir, check_output_dir
from freqlens.io.results import write_json
from freqlens.lens import ProbePoint, default_probe_points, probe_points_for, select_probe_points
from freqlens.loading import LoadedModel, load_model
from freqlens.measures.spectral_energy import SpectralEnergy, SpectrumResult
from freqlens.provenance import provenance
from freqlens.runner import make_loader, rank_and_world, resolve_device, resolve_dtype, stream

__all__ = ["SpectrumReport", "choose_probe_points", "load_model", "probe_points", "spectrum"]


def probe_points(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> list[ProbePoint]:
    """The model's probe points (declared, or derived from timm's feature_info or its module tree)."""
    size = input_size or tuple(timm.data.resolve_data_config({}, model=model)["input_size"])
    return default_probe_points(model, size)


def choose_probe_points(model: nn.Module, patterns: Sequence[str], input_size: tuple[int, int, int]) -> list[ProbePoint]:
    """Probe points matching glob ``patterns``: among the defaults first, else among all module paths."""
    defaults = default_probe_points(model, input_size)
    if not patterns:
        return defaults
    if all(any(fnmatch.fnmatchcase(p.name, pat) for p in defaults) for pat in patterns):
        return select_probe_points(defaults, patterns)
    names = [n for n, _ in model.named_modules() if n and any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]
    if not names:
        return select_probe_points(defaults, patterns)  # raises, listing the known points
    return probe_points_for(model, names, input_size)


@dataclasses.dataclass
class SpectrumReport:
    """What ``spectrum`` returns: the result, the probe points it covers, and its provenance."""

    result: SpectrumResult
    points: list[ProbePoint]
    provenance: dict[str, Any]

    def to_json(self, point_records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"measure": "spectrum", "provenance": self.provenance, "points": point_records}

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write results.json, CSVs, maps and figures into ``out`` atomically."""
        from freqlens.reports.spectrum import write_spectrum_outputs

        title = self.provenance["model"]["name"]
        with atomic_output_dir(out, overwrite) as tmp:
            records = write_spectrum_outputs(tmp, self.result, self.points, title)
            write_json(tmp / "results.json", self.to_json(records))
        return Path(out)


def spectrum(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
             ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
             probes: Sequence[str] = (), preset: str = "parkkim2022", batch_size: int = 32, limit: int | None = None,
             num_workers: int = 0, device: str = "auto", dtype: str = "float32", seed: int = 0,
             progress: bool = True, out: str | Path | None = None, overwrite: bool = False) -> SpectrumReport:
    """Spectral energy per probe point (measures.md §1) of ``model`` over ``images``.

    Args:
        model: a registry name, ``module:factory``, ``file.py:factory``, an ``nn.Module`` or a LoadedModel.
        images: folder, ImageFolder tree, glob, ``.txt`` list or ImageSet; default: the bundled samples.
        ckpt: checkpoint to load (``weights`` picks model/EMA weights; ``trust_checkpoint`` allows pickled code).
        probes: glob patterns over probe-point names (or module paths); default: the model's probe points.
        preset: the published protocol (``parkkim2022``).
        out: if given, write results.json, CSVs and figures there (atomically; ``overwrite`` replaces).

    Returns:
        A :class:`SpectrumReport`.
    """
    if out is not None:
        check_output_dir(out, overwrite)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    measure = SpectralEnergy.from_preset(preset) if preset in SpectralEnergy.presets else _unknown_preset(preset)
    loaded = _as_loaded(model, ckpt, weights, trust_checkpoint, torch_device)
    image_set = images if isinstance(images, ImageSet) else find_images(images or sample_images_dir(), limit=limit, seed=seed)
    data_config = loaded.data_config()
    points = choose_probe_points(loaded.model, probes, tuple(data_config["input_size"]))
    transform = timm.data.create_transform(**data_config, is_training=False)
    loader = make_loader(image_set, transform, batch_size, num_workers)
    torch.manual_seed(seed)
    stream(loaded.model, points, loader, lambda point, feats: measure.update({point.name: feats}),
           device=torch_device, dtype=torch_dtype, progress=progress)
    measure.sync()
    report = SpectrumReport(
        result=measure.compute(),
        points=points,
        provenance=provenance(model=loaded.provenance(), images=image_set.provenance(), preprocessing=_jsonable_cfg(data_config),
                              measure={"name": measure.name, **measure.settings(), "probe_patterns": list(probes)},
                              device=torch_device, dtype=torch_dtype, seed=seed),
    )
    if out is not None and rank_and_world()[0] == 0:
        report.write(out, overwrite)
    return report


def _unknown_preset(preset: str) -> SpectralEnergy:
    raise FreqlensError(f"unknown spectrum preset {preset!r}", hint=f"known presets: {', '.join(SpectralEnergy.presets)}",
                        exit_code=2)


def _as_loaded(model: str | nn.Module | LoadedModel, ckpt, weights, trust, device: torch.device) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        if ckpt is not None:
            raise FreqlensError("pass either a model name with ckpt, or a model object with its weights loaded",
                                exit_code=2)
        return LoadedModel(model.to(device), type(model).__name__, None, None, given_weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        return load_model(model, ckpt, weights=weights, trust=trust, device=device)


def _jsonable_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
