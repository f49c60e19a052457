"""The Python API: one call per analysis, the same calls the CLI and notebooks make.

Example:
    >>> import freqlens.api as fl                                          # doctest: +SKIP
    >>> report = fl.spectrum("deit_small_patch16_224", images="val/", limit=64)  # doctest: +SKIP
    >>> report.result["blocks.11"].delta_log_amplitude                      # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import timm
import torch
from torch import nn
from torch.utils.data import DataLoader

from freqlens.errors import FreqlensError, UsageError
from freqlens.io.images import ImageSet, find_images, sample_images_dir
from freqlens.io.outputs import atomic_output_dir, check_output_dir
from freqlens.io.progress import Progress
from freqlens.io.results import to_jsonable, write_json
from freqlens.lens import ProbePoint, default_probe_points, probe_points_for, select_probe_points
from freqlens.loading import LoadedModel, load_model
from freqlens.measures.base import Measure
from freqlens.measures.erf import EffectiveReceptiveField
from freqlens.measures.freq_response import BandLimitedAccuracy, FourierSensitivity, TransferFunction
from freqlens.measures.interaction_order import InteractionOrder
from freqlens.measures.rank_collapse import RankCollapse
from freqlens.measures.rotation_consistency import RotationConsistency
from freqlens.measures.spectral_energy import SpectralEnergy
from freqlens.provenance import provenance
from freqlens.runner import feed, make_loader, rank_and_world, resolve_device, resolve_dtype, stream

__all__ = ["MeasureReport", "Report", "choose_probe_points", "compare", "erf", "gradcam", "interactions",
           "load_model", "probe_points", "rank", "report", "response", "rotation", "spectrum"]


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


def spectrum(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
             ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
             probes: Sequence[str] = (), preset: str = "parkkim2022", batch_size: int = 32, limit: int | None = None,
             num_workers: int = 0, device: str = "auto", dtype: str = "float32", seed: int = 0,
             progress: bool = True, out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Spectral energy per probe point (measures.md §1) of ``model`` over ``images``.

    Args:
        model: a registry name, ``module:factory``, ``file.py:factory``, an ``nn.Module`` or a LoadedModel.
        images: folder, ImageFolder tree, glob, ``.txt`` list or ImageSet; default: the bundled samples.
        ckpt: checkpoint to load (``weights`` picks model/EMA weights; ``trust_checkpoint`` allows pickled code).
        probes: glob patterns over probe-point names (or module paths); default: the model's probe points.
        preset: the published protocol (``parkkim2022``).
        out: if given, write results.json, CSVs and figures there (atomically; ``overwrite`` replaces).

    Returns:
        A :class:`MeasureReport` whose ``result`` is a :class:`SpectrumResult`.
    """
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    measure = _measure(SpectralEnergy, preset)
    config, points = setup.stream_features(measure, probes, batch_size, num_workers, progress)
    return setup.finish(measure, points, config, probes, out, overwrite)


def _image_set(images: str | Path | ImageSet | None, limit: int | None, seed: int) -> ImageSet:
    """The images an analysis runs on: an ImageSet as given, else found from a path (default: the samples)."""
    return images if isinstance(images, ImageSet) else find_images(images or sample_images_dir(), limit=limit, seed=seed)


def _as_loaded(model: str | nn.Module | LoadedModel, ckpt, weights, trust, device: torch.device) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        if ckpt is not None:
            raise UsageError("pass either a model name with ckpt, or a model object with its weights loaded")
        loaded = LoadedModel(model.to(device), type(model).__name__, None, given_weights=True)
        loaded.check_input()
        return loaded
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        return load_model(model, ckpt, weights=weights, trust=trust, device=device)


@dataclasses.dataclass
class MeasureReport:
    """What every analysis returns: the measure's ``compute()`` result (a :class:`SpectrumResult` for
    ``spectrum``, else a dict), the probe points it covers and its provenance."""

    measure: str
    result: Any
    points: list[ProbePoint]
    provenance: dict[str, Any]

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write results.json, CSVs, arrays and figures into ``out`` atomically."""
        from freqlens.reports import (erf, freq_response, gradcam_outputs, interaction_order, rank_collapse,
                                      rotation_consistency, spectrum)

        title = self.provenance["model"]["name"]
        kinds = {p.name: p.kind for p in self.points}
        writers = {
            "spectrum": lambda d: {"points": spectrum.write_spectrum_outputs(d, self.result, self.points, title)},
            "erf": lambda d: {"points": erf.write_erf_outputs(d, self.result, title)},
            "interactions": lambda d: interaction_order.write_interaction_outputs(d, self.result, title),
            "rank": lambda d: {"points": rank_collapse.write_rank_outputs(
                d, self.result, [kinds.get(p["name"], "block") for p in self.result["points"]], title)},
            "rotation": lambda d: rotation_consistency.write_rotation_outputs(d, self.result, title),
            "gradcam": lambda d: gradcam_outputs.write_gradcam_outputs(d, self.result, title),
            "response": lambda d: freq_response.write_response_outputs(d, self.result, title),
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
    _check_input_fits(batch_size, size, setup.device)
    setup.loaded.check_input((3, size, size), hint="choose an --input-size the model takes, or a model built for "
                             "any size (timm ViTs: dynamic_img_size=True)")
    config = {**setup.loaded.data_config(), "input_size": (3, size, size), "crop_pct": 1.0, "crop_mode": "squash"}
    points = choose_probe_points(setup.loaded.model, probes, config["input_size"]) if probes else None
    measure = _measure(EffectiveReceptiveField, preset, points=points, input_size=size, on_coupling=on_coupling)
    loader = setup.loader(config, batch_size, num_workers)
    feed(setup.loaded.model, loader, lambda x, _labels, _indices: measure.update(setup.loaded.model, x),
         device=setup.device, dtype=setup.dtype, labelled=False, progress=progress)
    return setup.finish(measure, list(measure.points or []), config, probes, out, overwrite)


def _check_input_fits(batch_size: int, size: int, device: torch.device) -> None:
    """Refuse an input batch that alone needs more than the free memory: the OS would kill the run
    without a word (a typo in --input-size)."""
    need = batch_size * 3 * size * size * 4
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else _available_host_memory()
    if free is not None and need > free:
        raise UsageError(f"--input-size {size}: a batch of {batch_size} inputs alone takes {need / 2**30:,.1f} GiB, "
                         f"more than the {free / 2**30:,.1f} GiB available on {device}",
                         hint="use a smaller --input-size or --batch-size")


def _available_host_memory() -> int | None:
    """Bytes the OS reports available: Linux's MemAvailable (free memory misses the page cache it would
    reclaim; a container's own limit is not seen), else the free pages, else None where the platform has
    no such query (macOS, Windows)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


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
    With ``out``, the state after every image is kept beside it (:mod:`freqlens.io.progress`): the same
    call after an interruption continues from the finished images, with the same result.
    """
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    if target not in ("auto", "label", "predicted"):
        raise UsageError(f"--target {target!r}: use auto, label or predicted")
    if target == "auto":
        target = "label" if setup.image_set.has_labels else "predicted"
    if target == "label":
        if not setup.image_set.has_labels:
            raise UsageError("--target label needs labelled images: an ImageFolder tree, one folder per class",
                             hint="use --target predicted (or auto, which takes the labels when there are some)")
        setup.check_labels()
    config = setup.loaded.data_config()
    players = grid if grid is not None else InteractionOrder.presets.get(preset, {}).get("grid", 0)
    if players > min(config["input_size"][1:]):  # before the measure is built: it checks its pairs on the grid
        raise UsageError(f"--grid {players}: a {config['input_size'][1]}x{config['input_size'][2]} input has "
                         f"fewer pixels per side than players", hint="players are image patches: use a smaller --grid")
    overrides = {k: v for k, v in {"grid": grid, "pairs": pairs, "contexts": contexts}.items() if v is not None}
    measure = _measure(InteractionOrder, preset, target=target, seed=seed, batch_size=batch_size, **overrides)
    rank, world = rank_and_world()
    run = {"model": setup.loaded.provenance(), "images": setup.image_set.provenance(), "measure": measure.settings(),
           "dtype": str(setup.dtype), "processes": world}
    # an nn.Module passed in is only known by its class: another one's progress could not be told apart
    saved = Progress(out, run, rank) if out is not None and not setup.loaded.given_weights else None
    if saved is not None and saved.resume(measure):
        warnings.warn(f"interactions: continuing from {len(saved.done)} finished images in {saved.dir}")

    def update(x: torch.Tensor, labels: torch.Tensor | None, indices: list[int]) -> None:
        if saved is not None and indices[0] in saved.done:  # one image per batch
            return
        measure.update(setup.loaded.model, x, labels, indices)
        if saved is not None:
            saved.save(measure, indices[0])

    loader = setup.loader(config, 1, num_workers)
    try:
        feed(setup.loaded.model, loader, update, device=setup.device, dtype=setup.dtype,
             labelled=setup.image_set.has_labels, progress=progress)
    except KeyboardInterrupt:
        if saved is not None and saved.done:
            warnings.warn(f"interactions: {len(saved.done)} finished images are kept in {saved.dir}; "
                          "the same command continues from them")
        raise
    report = setup.finish(measure, [], config, (), out, overwrite)
    if saved is not None:
        saved.clear()
    return report


def rank(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
         ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
         probes: Sequence[str] = (), preset: str = "dong2021", batch_size: int = 32, limit: int | None = None,
         num_workers: int = 0, device: str = "auto", dtype: str = "float32", seed: int = 0, progress: bool = True,
         out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Rank collapse (measures.md §4) at every probe point of ``model`` over ``images``."""
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    measure = _measure(RankCollapse, preset)
    config, points = setup.stream_features(measure, probes, batch_size, num_workers, progress)
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
    setup.check_labels()
    config = setup.loaded.data_config()
    points = choose_probe_points(setup.loaded.model, probes, tuple(config["input_size"]))
    overrides = {k: v for k, v in {"angles": angles, "interpolation": interpolation}.items() if v is not None}
    measure = _measure(RotationConsistency, preset, points=points, **overrides)
    loader = setup.loader(config, batch_size, num_workers)
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
        if weights not in ("auto", "model", "ema"):
            raise UsageError(f"--weights {weights!r}: weights must be auto, model or ema")
        torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
        torch.manual_seed(seed)  # before the model is built: random-weight runs are reproducible too
        loaded = _as_loaded(model, ckpt, weights, trust_checkpoint, torch_device)
        return cls(loaded, _image_set(images, limit, seed), torch_device, torch_dtype, seed)

    def check_labels(self) -> None:
        """Labels are sorted folder indices, so a tree with more class folders than the model has classes
        cannot be scored against it (no-op without labels)."""
        num_classes = getattr(self.loaded.model, "num_classes", None)
        if self.image_set.has_labels and isinstance(num_classes, int) and max(self.image_set.labels) >= num_classes:
            raise FreqlensError(
                f"the image tree has {len(self.image_set.classes)} class folders, the model {num_classes} classes",
                hint="labels are sorted folder indices: use a tree with the model's classes, or a flat folder")

    def loader(self, config: dict[str, Any], batch_size: int, num_workers: int) -> DataLoader:
        """This rank's share of the images through the eval transform of ``config``."""
        return make_loader(self.image_set, timm.data.create_transform(**config, is_training=False), batch_size, num_workers)

    def stream_features(self, measure: Measure, probes: Sequence[str], batch_size: int, num_workers: int,
                        progress: bool) -> tuple[dict[str, Any], list[ProbePoint]]:
        """Feed a probe-point measure (``update({name: features})``) every image at the model's own
        preprocessing; returns that preprocessing and the probe points."""
        config = self.loaded.data_config()
        points = choose_probe_points(self.loaded.model, probes, tuple(config["input_size"]))
        stream(self.loaded.model, points, self.loader(config, batch_size, num_workers),
               lambda point, feats: measure.update({point.name: feats}), device=self.device, dtype=self.dtype,
               progress=progress)
        return config, points

    def provenance(self, name: str, settings: dict[str, Any], config: dict[str, Any], probes: Sequence[str]) -> dict[str, Any]:
        """The provenance block of this run's results."""
        return provenance(model=self.loaded.provenance(), images=self.image_set.provenance(),
                          preprocessing=to_jsonable(config), measure={"name": name, **settings, "probe_patterns": list(probes)},
                          device=self.device, dtype=self.dtype, seed=self.seed)

    def finish(self, measure: Measure, points: list[ProbePoint], config: dict[str, Any], probes: Sequence[str],
               out: str | Path | None, overwrite: bool) -> MeasureReport:
        measure.sync()
        return self.report(measure.name, measure.compute(), measure.settings(), points, config, probes, out, overwrite)

    def report(self, name: str, result: dict[str, Any], settings: dict[str, Any], points: list[ProbePoint],
               config: dict[str, Any], probes: Sequence[str], out: str | Path | None, overwrite: bool) -> MeasureReport:
        """Wrap a computed result with its provenance, and write it when ``out`` is given."""
        report = MeasureReport(
            measure=name,
            result=result,
            points=points,
            provenance=self.provenance(name, settings, config, probes),
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


# -- Grad-CAM, frequency response, one-page reports and comparisons -------------------------------------
def gradcam(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
            ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
            layer: str | None = None, method: str = "gradcam", classes: Sequence[int] = (), sanity: bool = False,
            batch_size: int = 8, limit: int | None = None, num_workers: int = 0, device: str = "auto",
            dtype: str = "float32", seed: int = 0, progress: bool = True, out: str | Path | None = None,
            overwrite: bool = False) -> MeasureReport:
    """Grad-CAM maps (measures.md §7) of ``model`` on every image, optionally with the randomisation check.

    ``layer``: module path of the target layer (default: the model's ``gradcam_target``, else its last
    probe point; for class-token ViTs the last block's ``norm1``). ``method``: a key of
    ``freqlens.reports.gradcam.METHODS``. ``classes``: the class explained, one for all images or one per
    image (default: each image's prediction). ``sanity``: also run Adebayo et al.'s cascading parameter
    randomisation and report each step's Spearman correlation with the original map.
    """
    from freqlens.reports import gradcam as cam
    from freqlens.reports.gradcam_outputs import display_images

    if method not in cam.METHODS:
        raise UsageError(f"--method {method!r} is not a Grad-CAM method", hint=f"choose one of {', '.join(cam.METHODS)}")
    if rank_and_world()[1] > 1:  # maps are per image, not a mergeable state: one process writes them all
        raise UsageError("gradcam runs in a single process", hint="run it without torchrun (use --device cuda:N)")
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    net, config = setup.loaded.model, setup.loaded.data_config()
    try:
        target = cam.resolve_target(net, layer, tuple(config["input_size"]))
    except FreqlensError as exc:
        raise UsageError(f"--layer {layer!r}: {exc.message}", hint=exc.hint) from exc
    chosen = _check_classes(net, classes, len(setup.image_set))
    parts: dict[str, list] = {key: [] for key in ("indices", "images", "maps", "raw", "classes", "spearman", "first")}
    steps: list[str] = []

    def update(x: torch.Tensor, _labels: torch.Tensor | None, indices: list[int]) -> None:
        batch_classes = None if chosen is None else [chosen[i] for i in indices]
        if sanity:
            check = cam.cascading_randomisation(net, x, batch_classes, target, method, seed=setup.seed)
            maps = check.original
            steps[:] = check.steps
            parts["spearman"].append(check.spearman)
            if not parts["first"]:  # the first image's maps per step, for the figure
                parts["first"].append(check.maps[:, 0])
        else:
            maps = cam.gradcam(net, x, batch_classes, target, method)
        parts["indices"] += indices
        parts["images"].append(display_images(x, config["mean"], config["std"]))
        for key in ("maps", "raw", "classes"):
            parts[key].append(getattr(maps, key).cpu())

    loader = setup.loader(config, batch_size, num_workers)
    feed(net, loader, update, device=setup.device, dtype=setup.dtype, labelled=False, progress=progress)
    result = {
        "method": method, "target": target,
        "paths": [setup.image_set.paths[i] for i in parts["indices"]],
        "labels": [setup.image_set.labels[i] for i in parts["indices"]],
        **{key: torch.cat(parts[key]) for key in ("images", "maps", "raw", "classes")},
        "sanity": {"steps": list(steps), "spearman": torch.cat(parts["spearman"], dim=1), "first_image_maps": parts["first"][0],
                   "seed": seed} if sanity else None,
    }
    settings = {"method": method, "layer": target.name, "layout": target.layout, "classes": list(classes) or "predicted",
                "sanity": sanity}
    return setup.report("gradcam", result, settings, [target], config, (), out, overwrite)


def _check_classes(model: nn.Module, classes: Sequence[int], count: int) -> list[int] | None:
    """One class per image from ``classes`` (none: predicted; one: for all), range-checked up front."""
    if not classes:
        return None
    if len(classes) not in (1, count):
        raise UsageError(f"--classes: got {len(classes)} class indices for {count} images",
                         hint="give one class index for all images or exactly one per image")
    num = getattr(model, "num_classes", None)
    limit = num if isinstance(num, int) and num > 0 else None
    bad = [c for c in classes if c < 0 or (limit is not None and c >= limit)]
    if bad:
        valid = f"the model has {limit} classes (valid: 0 to {limit - 1})" if limit else "indices must be >= 0"
        raise UsageError(f"--classes: class index {bad[0]} is out of range: {valid}")
    return list(classes) * count if len(classes) == 1 else list(classes)


def response(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
             ckpt: str | Path | None = None, weights: str = "auto", trust_checkpoint: bool = False,
             probes: Sequence[str] = (), preset: str = "yin2019_imagenet", eps: float | None = None,
             max_freq: int | None = 16, transfer: bool = True, transfer_max_freq: int | None = 4,
             cutoffs: Sequence[float] | None = None, batch_size: int = 8, forward_batch: int = 256,
             limit: int | None = None, num_workers: int = 0, device: str = "auto", dtype: str = "float32", seed: int = 0,
             progress: bool = True, out: str | Path | None = None, overwrite: bool = False) -> MeasureReport:
    """Frequency response (measures.md §6) of ``model`` over ``images``.

    The Fourier heat map (Yin et al. 2019) counts errors when the image set has labels (an ImageFolder
    tree, whose sorted folder index must be the model's class index) and prediction flips always, on the
    frequencies |u|, |v| <= ``max_freq`` (``None``: the full grid, one forward per image and basis pair).
    ``eps`` (pixel units) overrides the preset's. The transfer function of each probe point (``probes``,
    default: the model's) is measured for |u|, |v| <= ``transfer_max_freq`` (``transfer=False`` skips it).
    ``cutoffs``: band-limited accuracy cut-off radii (1 = Nyquist). ``forward_batch``: images per forward
    pass inside the measures (speed only).
    """
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    net, config = setup.loaded.model, setup.loaded.data_config()
    size = tuple(config["input_size"][1:])
    labelled = setup.image_set.has_labels
    setup.check_labels()
    sensitivity = _measure(FourierSensitivity, preset, image_size=size, max_freq=max_freq, pixel_std=tuple(config["std"]),
                           seed=seed, batch_size=forward_batch, **({"eps": eps} if eps is not None else {}))
    points = choose_probe_points(net, probes, tuple(config["input_size"])) if transfer else []
    try:
        transfer_fn = TransferFunction(points, size, transfer_max_freq) if transfer else None
        band = BandLimitedAccuracy(**({"cutoffs": cutoffs} if cutoffs is not None else {}), batch_size=forward_batch)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    measures = [m for m in (sensitivity, transfer_fn, band) if m is not None]

    def update(x: torch.Tensor, labels: torch.Tensor | None, indices: list[int]) -> None:
        sensitivity.update(net, x, labels, indices)
        if transfer_fn is not None:
            transfer_fn.update(net, x)
        band.update(net, x, labels)

    loader = setup.loader(config, batch_size, num_workers)
    feed(net, loader, update, device=setup.device, dtype=setup.dtype, labelled=labelled, progress=progress)
    for measure in measures:
        measure.sync()
    result = {"fourier": sensitivity.compute(), "transfer": transfer_fn.compute() if transfer_fn else None,
              "band": band.compute()}
    settings = {m.name: m.settings() for m in measures} | {"labels": "folder index" if labelled else None}
    return setup.report("response", result, settings, points, config, probes, out, overwrite)


@dataclasses.dataclass
class Report:
    """What ``report`` and ``compare`` return: the page (``html``; shown inline in Jupyter), the combined
    results, each analysis's own report, and the folder written (None when ``out`` was not given)."""

    title: str
    sections: list[str]
    results: dict[str, Any]
    reports: dict[str, Any]
    path: Path | None

    @property
    def html(self) -> str:
        from freqlens.reports import html

        return html.document(self.title, self.sections)

    def _repr_html_(self) -> str:
        from freqlens.reports import html

        return html.fragment(self.title, self.sections)


REPORT_MEASURES = ("spectrum", "response", "gradcam", "erf", "rank", "rotation", "interactions")
_SHARED = ("device", "dtype", "seed", "progress", "num_workers")  # report/compare pass these to every analysis


def report(model: str | nn.Module | LoadedModel, images: str | Path | ImageSet | None = None, *,
           measures: Sequence[str] = ("spectrum", "response", "gradcam"), ckpt: str | Path | None = None,
           weights: str = "auto", trust_checkpoint: bool = False, options: dict[str, dict[str, Any]] | None = None,
           limit: int | None = None, num_workers: int = 0, device: str = "auto", dtype: str = "float32", seed: int = 0,
           progress: bool = True, out: str | Path | None = None, overwrite: bool = False) -> Report:
    """Run ``measures`` (any of :data:`REPORT_MEASURES`) on one model and image set, and gather them into
    one self-contained ``report.html`` with ``results.json`` and each measure's files in a sub-folder.

    ``options`` maps a measure to keyword arguments of its own function here, e.g.
    ``{"response": {"max_freq": 4}, "gradcam": {"sanity": True}}``. Without ``out`` nothing is kept on
    disk; the returned :class:`Report` still holds the page.
    """
    options = _check_report_options(measures, options or {})
    setup = _Setup.prepare(model, images, ckpt, weights, trust_checkpoint, limit, seed, device, dtype, out, overwrite)
    shared = {"device": device, "dtype": dtype, "seed": seed, "progress": progress, "num_workers": num_workers}
    runs = {name: _ANALYSES[name](setup.loaded, setup.image_set, **shared, **options.get(name, {})) for name in measures}
    prov = provenance(model=setup.loaded.provenance(), images=setup.image_set.provenance(),
                      preprocessing=to_jsonable(setup.loaded.data_config()),
                      measure={"name": "report", "measures": list(measures), "options": options},
                      device=setup.device, dtype=setup.dtype, seed=seed)
    title = f"freqlens report: {setup.loaded.name}"
    return _write_page(title, prov, runs, None, out, overwrite)


def compare(models: Sequence[str], images: str | Path | ImageSet | None = None, *, weights: str = "auto",
            trust_checkpoint: bool = False, probes: Sequence[str] = (), method: str = "gradcam",
            classes: Sequence[int] = (), batch_size: int = 8, limit: int | None = None, num_workers: int = 0,
            device: str = "auto", dtype: str = "float32", seed: int = 0, progress: bool = True,
            out: str | Path | None = None, overwrite: bool = False) -> Report:
    """Spectrum and Grad-CAM of two or more models on the same images and settings, side by side.

    Each of ``models`` is ``NAME`` (random weights) or ``NAME=CHECKPOINT`` (split at the first ``=``),
    e.g. ``["deit_tiny_patch16_224=deit_t.pth", "fdam_deit_t=fdam_t.pth"]``. Writes the overlaid
    Δ-log-amplitude-vs-depth figure, the maps side by side, each model's own outputs under
    ``models/<label>/`` and one ``report.html``.
    """
    from freqlens.reports.compare import write_comparison_outputs

    specs = _model_specs(models)
    if out is not None:
        check_output_dir(out, overwrite)
    methods = _gradcam_methods()
    if method not in methods:
        raise UsageError(f"--method {method!r} is not a Grad-CAM method", hint=f"choose one of {', '.join(methods)}")
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    image_set = _image_set(images, limit, seed)
    shared = {"device": device, "dtype": dtype, "seed": seed, "progress": progress, "num_workers": num_workers,
              "batch_size": batch_size}
    by_model, models_prov = {}, []
    for label, name, ckpt in specs:
        loaded = _as_loaded(name, ckpt, weights, trust_checkpoint, torch_device)
        models_prov.append({"label": label, **loaded.provenance()})
        by_model[label] = {"spectrum": spectrum(loaded, image_set, probes=probes, **shared),
                           "gradcam": gradcam(loaded, image_set, method=method, classes=classes, **shared)}
    prov = provenance(model={"name": " vs ".join(by_model), "models": models_prov}, images=image_set.provenance(),
                      preprocessing={"per_model": "each model's own eval transform (see models/<label>/*/results.json)"},
                      measure={"name": "compare", "measures": ["spectrum", "gradcam"], "method": method,
                               "classes": list(classes) or "predicted", "probe_patterns": list(probes)},
                      device=torch_device, dtype=torch_dtype, seed=seed)
    runs = {f"models/{label}/{name}": run for label, model_runs in by_model.items() for name, run in model_runs.items()}
    return _write_page(f"freqlens comparison: {' vs '.join(by_model)}", prov, runs,
                       lambda directory: write_comparison_outputs(directory, by_model), out, overwrite)


_ANALYSES = {"spectrum": spectrum, "response": response, "gradcam": gradcam, "erf": erf, "rank": rank,
             "rotation": rotation, "interactions": interactions}


def _gradcam_methods() -> tuple[str, ...]:
    from freqlens.reports.gradcam import METHODS

    return tuple(METHODS)


def _check_report_options(measures: Sequence[str], options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Known measures, no repeats, and option names each measure's function takes (not the shared ones)."""
    import inspect

    unknown = [m for m in list(measures) + list(options) if m not in REPORT_MEASURES]
    if unknown or not measures or len(set(measures)) != len(measures):
        what = f"unknown measure {unknown[0]!r}" if unknown else "measures must be a non-empty list without repeats"
        raise UsageError(f"--measures: {what}", hint=f"choose from {', '.join(REPORT_MEASURES)}")
    for name, opts in options.items():
        allowed = set(inspect.signature(_ANALYSES[name]).parameters) - {"model", "images", "out", "overwrite", "ckpt",
                                                                         "weights", "trust_checkpoint", "limit", *_SHARED}
        bad = sorted(set(opts) - allowed)
        if bad:
            raise UsageError(f"{name} has no option {bad[0]!r}", hint=f"its options: {', '.join(sorted(allowed))}")
    return {name: dict(opts) for name, opts in options.items()}


def _model_specs(models: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """(label, name, checkpoint) of each ``NAME[=CHECKPOINT]``; labels are unique and safe as folder names."""
    import re

    if len(models) < 2:
        raise UsageError(f"compare needs at least two models, got {len(models)}",
                         hint="e.g. compare deit_tiny_patch16_224 fdam_deit_t")
    specs = []
    for spec in models:
        name, _, ckpt = spec.partition("=")
        if not name:
            raise UsageError(f"model spec {spec!r} has no model name", hint="write NAME or NAME=CHECKPOINT")
        specs.append((name, ckpt or None))
    names = [n.rpartition(":")[2] for n, _ in specs]  # module:factory and file.py:factory go by the factory's name
    labels = [n if names.count(n) == 1 else f"{n}={Path(c).stem if c else 'random'}" for n, (_, c) in zip(names, specs)]
    labels = [label if labels.count(label) == 1 else f"{label}#{i}" for i, label in enumerate(labels)]
    return [(re.sub(r"[^A-Za-z0-9._=#+-]+", "_", label), n, c) for label, (n, c) in zip(labels, specs, strict=True)]


def _write_page(title: str, prov: dict[str, Any], runs: dict[str, Any], extra: Any, out: str | Path | None,
                overwrite: bool) -> Report:
    """Write each analysis report of ``runs`` into its folder (the key), ``extra(root)`` the top-level
    comparison files, then results.json and report.html: atomically into ``out``, else a temporary folder."""
    import json
    import tempfile

    from freqlens.reports import html

    def write(root: Path) -> tuple[list[str], dict[str, Any]]:
        sections, results = [], {"measure": prov["measure"]["name"], "provenance": prov, "results": {}}
        if extra is not None:
            results["comparison"] = extra(root)
            sections.append(html.folder_section("Comparison", root, root))
        for folder, run in runs.items():
            run.write(root / folder)  # atomic_output_dir makes the parent folders
            results["results"][folder] = json.loads((root / folder / "results.json").read_text())
            sections.append(html.folder_section(folder, root / folder, root))
        sections.append("<h2>Provenance</h2>" + html.provenance_table(prov))
        write_json(root / "results.json", results)
        (root / "report.html").write_text(html.document(title, sections))
        return sections, results

    if out is not None and rank_and_world()[0] == 0:
        with atomic_output_dir(out, overwrite) as tmp:
            sections, results = write(tmp)
        return Report(title, sections, results, runs, Path(out))
    with tempfile.TemporaryDirectory(prefix="freqlens-report-") as tmp:
        sections, results = write(Path(tmp))
    return Report(title, sections, results, runs, None)
