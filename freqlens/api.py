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

from freqlens.errors import FreqlensError, UsageError
from freqlens.io.images import ImageSet, find_images, sample_images_dir
from freqlens.io.outputs import atomic_output_dir, check_output_dir
from freqlens.io.results import write_json
from freqlens.lens import ProbePoint, default_probe_points, probe_points_for, select_probe_points
from freqlens.loading import LoadedModel, load_model
from freqlens.measures.base import Measure
from freqlens.measures.erf import EffectiveReceptiveField
from freqlens.measures.interaction_order import InteractionOrder
from freqlens.measures.rank_collapse import RankCollapse
from freqlens.measures.rotation_consistency import RotationConsistency
from freqlens.measures.spectral_energy import SpectralEnergy, SpectrumResult
from freqlens.provenance import provenance
from freqlens.runner import feed, make_loader, rank_and_world, resolve_device, resolve_dtype, stream

__all__ = ["MeasureReport", "SpectrumReport", "choose_probe_points", "erf", "interactions", "load_model", "probe_points",
           "rank", "rotation", "spectrum"]


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
    if weights not in ("auto", "model", "ema"):
        raise FreqlensError(f"--weights {weights!r}: weights must be auto, model or ema", exit_code=2)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    measure = SpectralEnergy.from_preset(preset) if preset in SpectralEnergy.presets else _unknown_preset(preset)
    torch.manual_seed(seed)  # random-weight runs are reproducible too
    loaded = _as_loaded(model, ckpt, weights, trust_checkpoint, torch_device)
    image_set = images if isinstance(images, ImageSet) else find_images(images or sample_images_dir(), limit=limit, seed=seed)
    data_config = loaded.data_config()
    points = choose_probe_points(loaded.model, probes, tuple(data_config["input_size"]))
    transform = timm.data.create_transform(**data_config, is_training=False)
    loader = make_loader(image_set, transform, batch_size, num_workers)
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


@dataclasses.dataclass
class MeasureReport:
    """What ``erf``, ``interactions``, ``rank`` and ``rotation`` return: the measure's ``compute()``
    result, the probe points it covers and its provenance."""

    measure: str
    result: dict[str, Any]
    points: list[ProbePoint]
    provenance: dict[str, Any]

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write results.json, CSVs, arrays and figures into ``out`` atomically."""
        from freqlens.reports import erf, interaction_order, rank_collapse, rotation_consistency

        title = self.provenance["model"]["name"]
        kinds = {p.name: p.kind for p in self.points}
        writers = {
            "erf": lambda d: {"points": erf.write_erf_outputs(d, self.result, title)},
            "interactions": lambda d: interaction_order.write_interaction_outputs(d, self.result, title),
            "rank": lambda d: {"points": rank_collapse.write_rank_outputs(
                d, self.result, [kinds.get(p["name"], "block") for p in self.result["points"]], title)},
            "rotation": lambda d: rotation_consistency.write_rotation_outputs(d, self.result, title),
        }
        with atomic_output_dir(out, overwrite) as tmp:
            records = writers[self.measure](tmp)
            write_json(tmp / "results.json", {"measure": self.measure, "provenance": self.provenance, **records})
        return Path(out)


def erf(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
        ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
        probes: Sequence[str] = (), preset: str = "replknet2022", input_size: int | None = None,
        on_coupling: str = "per_sample", batch_size: int = 8, limit: int | None = None, num_workers: int = 0,
        device: str = "auto", dtype: str = "float32", seed: int = 0, progress: bool = True,
        out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Effective receptive field (measures.md §2) of ``model`` over ``images``.

    Images are squashed to ``input_size`` x ``input_size`` (default: the preset's, 1024 for
    ``replknet2022``) with the model's normalisation, as ``visualize_erf.py`` does. ``probes`` pick the
    feature maps whose centre is explained (default: the last stage). Other arguments as ``spectrum``.
    """
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    size = input_size or EffectiveReceptiveField.presets.get(preset, {}).get("input_size") or 1024
    config = {**setup.loaded.data_config(), "input_size": (3, size, size), "crop_pct": 1.0, "crop_mode": "squash"}
    points = choose_probe_points(setup.loaded.model, probes, config["input_size"]) if probes else None
    measure = _measure(EffectiveReceptiveField, preset, points=points, input_size=size, on_coupling=on_coupling)
    loader = make_loader(setup.image_set, timm.data.create_transform(**config, is_training=False), batch_size, num_workers)
    feed(setup.loaded.model, loader, lambda x, _labels, _indices: measure.update(setup.loaded.model, x),
         device=setup.device, dtype=setup.dtype, labelled=False, progress=progress)
    return setup.finish(measure, list(measure.points or []), config, probes, out, overwrite)


def interactions(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
                 ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
                 preset: str = "moganet2024", target: str = "auto", grid: int | None = None, pairs: int | None = None,
                 contexts: int | None = None, batch_size: int = 256, limit: int | None = None, num_workers: int = 0,
                 device: str = "auto", dtype: str = "float32", seed: int = 0, progress: bool = True,
                 out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Multi-order interaction strength (measures.md §3) of ``model`` over ``images``.

    ``target``: ``label``, ``predicted`` or ``auto`` (the label when the image set has labels, else the
    prediction; the choice is recorded). ``grid``/``pairs``/``contexts`` override the preset's;
    ``batch_size`` is the number of masked copies per forward. ``seed`` seeds the pair/context sampling.
    """
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    if target not in ("auto", "label", "predicted"):
        raise UsageError(f"--target {target!r}: use auto, label or predicted")
    if target == "auto":
        target = "label" if setup.image_set.has_labels else "predicted"
    overrides = {k: v for k, v in {"grid": grid, "pairs": pairs, "contexts": contexts}.items() if v is not None}
    measure = _measure(InteractionOrder, preset, target=target, seed=seed, batch_size=batch_size, **overrides)
    config = setup.loaded.data_config()
    loader = make_loader(setup.image_set, timm.data.create_transform(**config, is_training=False), 1, num_workers)
    feed(setup.loaded.model, loader, lambda x, labels, indices: measure.update(setup.loaded.model, x, labels, indices),
         device=setup.device, dtype=setup.dtype, labelled=setup.image_set.has_labels, progress=progress)
    return setup.finish(measure, [], config, (), out, overwrite)


def rank(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
         ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
         probes: Sequence[str] = (), preset: str = "dong2021", batch_size: int = 32, limit: int | None = None,
         num_workers: int = 0, device: str = "auto", dtype: str = "float32", seed: int = 0, progress: bool = True,
         out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Rank collapse (measures.md §4) at every probe point of ``model`` over ``images``."""
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    measure = _measure(RankCollapse, preset)
    config = setup.loaded.data_config()
    points = choose_probe_points(setup.loaded.model, probes, tuple(config["input_size"]))
    loader = make_loader(setup.image_set, timm.data.create_transform(**config, is_training=False), batch_size, num_workers)
    stream(setup.loaded.model, points, loader, lambda point, feats: measure.update({point.name: feats}),
           device=setup.device, dtype=setup.dtype, progress=progress)
    return setup.finish(measure, points, config, probes, out, overwrite)


def rotation(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
             ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
             probes: Sequence[str] = (), preset: str = "rot90", angles: Sequence[float] | None = None,
             interpolation: str | None = None, batch_size: int = 32, limit: int | None = None, num_workers: int = 0,
             device: str = "auto", dtype: str = "float32", seed: int = 0, progress: bool = True,
             out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Rotation consistency (measures.md §5) of ``model``'s outputs and probe points over ``images``.

    ``angles`` (degrees) and ``interpolation`` (``exact`` or ``bilinear``) override the preset's.
    """
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    config = setup.loaded.data_config()
    points = choose_probe_points(setup.loaded.model, probes, tuple(config["input_size"]))
    overrides = {k: v for k, v in {"angles": angles, "interpolation": interpolation}.items() if v is not None}
    measure = _measure(RotationConsistency, preset, points=points, **overrides)
    loader = make_loader(setup.image_set, timm.data.create_transform(**config, is_training=False), batch_size, num_workers)
    feed(setup.loaded.model, loader, lambda x, labels, _indices: measure.update(setup.loaded.model, x, labels),
         device=setup.device, dtype=setup.dtype, labelled=setup.image_set.has_labels, progress=progress)
    return setup.finish(measure, points, config, probes, out, overwrite)


@dataclasses.dataclass
class _Setup:
    """What every model-and-images analysis resolves first, and how it ends (sync, provenance, write)."""

    loaded: LoadedModel
    image_set: ImageSet
    device: torch.device
    dtype: torch.dtype
    seed: int

    @classmethod
    def prepare(cls, model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite) -> "_Setup":
        if out is not None:
            check_output_dir(out, overwrite)
        torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
        loaded = _as_loaded(model, ckpt, weights, trust_checkpoint, torch_device)
        image_set = images if isinstance(images, ImageSet) else find_images(images or sample_images_dir(), limit=limit, seed=seed)
        torch.manual_seed(seed)
        return cls(loaded, image_set, torch_device, torch_dtype, seed)

    def finish(self, measure: Measure, points: list[ProbePoint], config: dict[str, Any], probes: Sequence[str],
               out: str | Path | None, overwrite: bool) -> MeasureReport:
        measure.sync()
        report = MeasureReport(
            measure=measure.name,
            result=measure.compute(),
            points=points,
            provenance=provenance(model=self.loaded.provenance(), images=self.image_set.provenance(),
                                  preprocessing=_jsonable_cfg(config),
                                  measure={"name": measure.name, **measure.settings(), "probe_patterns": list(probes)},
                                  device=self.device, dtype=self.dtype, seed=self.seed),
        )
        if out is not None and rank_and_world()[0] == 0:
            report.write(out, overwrite)
        return report


def _measure(cls: type[Measure], preset: str, **overrides: Any) -> Measure:
    """``cls.from_preset`` with bad presets and option values turned into usage errors (exit code 2)."""
    if preset not in cls.presets:
        raise UsageError(f"unknown {cls.name} preset {preset!r}", hint=f"known presets: {', '.join(cls.presets)}")
    try:
        return cls.from_preset(preset, **overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
