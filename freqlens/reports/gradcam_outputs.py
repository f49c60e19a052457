"""Grad-CAM outputs: an overlay per image (PNG + PDF), the raw maps (npz), a per-image CSV, a grid figure,
and, with the randomisation check, Spearman per step (CSV) with its curve and the maps it changed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from freqlens.io.results import save_figure, write_csv
from freqlens.reports.figures import paper_style

MAP_CMAP = "inferno"  # perceptually uniform; the map reads as brightness over the photograph
GRID_IMAGES = 8  # images shown in the overview figure (every image gets its own overlay file)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] map (H, W), coloured by :data:`MAP_CMAP`, over an RGB uint8 image (H, W, 3)."""
    colour = matplotlib.colormaps[MAP_CMAP](cam)[..., :3]
    return np.clip((1 - alpha) * image / 255.0 + alpha * colour, 0, 1)


def unnormalised(x: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """Model inputs (B, 3, H, W) back to RGB pixels in [0, 1], (B, H, W, 3) on the CPU."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
    std_t = torch.as_tensor(std, dtype=torch.float32)[:, None, None]
    return (x.detach().float().cpu() * std_t + mean_t).clamp(0, 1).permute(0, 2, 3, 1)


def display_images(x: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """Model inputs (B, 3, H, W) back to displayable uint8 RGB (B, H, W, 3) by undoing the normalisation."""
    return (unnormalised(x, mean, std) * 255).round().to(torch.uint8)


def overlays_figure(result: dict[str, Any], title: str) -> plt.Figure:
    """The first images (top) and their maps over them (bottom), titled with the class explained."""
    n = min(GRID_IMAGES, len(result["paths"]))
    with paper_style():
        fig, axes = plt.subplots(2, n, figsize=(1.7 * n + 0.4, 3.8), layout="constrained", squeeze=False)
        for i in range(n):
            image, cam = result["images"][i].numpy(), result["maps"][i].numpy()
            axes[0, i].imshow(image)
            axes[0, i].set_title(f"{Path(result['paths'][i]).name[:18]}\nclass {int(result['classes'][i])}", fontsize=7)
            axes[1, i].imshow(overlay(image, cam))
            for ax in axes[:, i]:
                ax.set_axis_off()
        mappable = plt.cm.ScalarMappable(cmap=MAP_CMAP, norm=plt.Normalize(0, 1))
        fig.colorbar(mappable, ax=axes[1, :].tolist(), shrink=0.8, label="map (per image, 0–1)")
        fig.suptitle(f"{title}: {result['method']} at {result['target'].name}")
    return fig


def sanity_figure(result: dict[str, Any], title: str) -> plt.Figure:
    """Spearman rank correlation of each image's map with the original after each randomisation step."""
    sanity = result["sanity"]
    rho = sanity["spearman"].numpy()  # (S, B)
    steps = np.arange(1, len(sanity["steps"]) + 1)
    with paper_style():
        fig, ax = plt.subplots(figsize=(max(3.6, 0.35 * len(steps) + 1.5), 3.0), layout="constrained")
        for b in range(rho.shape[1]):
            ax.plot(steps, rho[:, b], color="0.75", lw=0.6)
        mean = [np.nan if v is None else v for v in _nanmean_rows(sanity["spearman"])]
        ax.plot(steps, mean, color="#0072B2", marker="o", ms=3, lw=1.2, label="mean over images (gaps: constant maps)")
        ax.axhline(0, color="0.4", lw=0.5, ls=":")
        ax.set_ylim(-1.05, 1.05)
        ax.set_xticks(steps, [s[-14:] for s in sanity["steps"]], rotation=60, ha="right", fontsize=6)
        ax.set_xlabel("cumulative randomisation (output side first)")
        ax.set_ylabel("Spearman ρ with original map")
        ax.set_title(f"{title}: parameter-randomisation check")
        ax.legend(frameon=False)
    return fig


def sanity_maps_figure(result: dict[str, Any], title: str) -> plt.Figure:
    """The first image's map before and after each randomisation step (Adebayo et al. 2018, Fig. 2)."""
    sanity = result["sanity"]
    maps = [result["maps"][0].numpy()] + [m.numpy() for m in sanity["first_image_maps"]]
    names = ["original"] + [s[-14:] for s in sanity["steps"]]
    cols = min(len(maps), 6)
    rows = -(-len(maps) // cols)
    with paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.55 * rows + 0.3), layout="constrained", squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, cam, name in zip(axes.flat, maps, names):
            ax.imshow(cam, cmap=MAP_CMAP, vmin=0, vmax=1)
            ax.set_title(name, fontsize=6)
        fig.suptitle(f"{title}: {Path(result['paths'][0]).name} under cascading randomisation")
    return fig


def write_gradcam_outputs(directory: Path, result: dict[str, Any], title: str) -> dict[str, Any]:
    """Write overlays/, ``gradcam_maps.npz``, ``gradcam.csv``, the figures and, with the sanity check,
    ``gradcam_sanity.csv``; returns the JSON records."""
    overlays_dir = directory / "overlays"
    overlays_dir.mkdir()
    rows = []
    for i, path in enumerate(result["paths"]):
        picture = Image.fromarray((overlay(result["images"][i].numpy(), result["maps"][i].numpy()) * 255).astype(np.uint8))
        stem = f"{i:04d}_{Path(path).stem}"
        picture.save(overlays_dir / f"{stem}.png")
        picture.save(overlays_dir / f"{stem}.pdf", resolution=100.0)
        raw = result["raw"][i]
        peak_y, peak_x = divmod(int(raw.argmax()), raw.shape[1])
        rows.append({"image": i, "path": str(path), "label": result["labels"][i], "class": int(result["classes"][i]),
                     "raw_max": float(raw.max()), "raw_mean": float(raw.mean()), "peak_y": peak_y, "peak_x": peak_x,
                     "overlay": f"overlays/{stem}.png"})
    write_csv(directory / "gradcam.csv", list(rows[0]), [list(r.values()) for r in rows])
    arrays = {"maps": result["maps"].numpy(), "raw": result["raw"].numpy(), "classes": result["classes"].numpy(),
              "paths": np.array([str(p) for p in result["paths"]])}
    save_figure(overlays_figure(result, title), directory, "gradcam_overlays")
    sanity = result["sanity"]
    records: dict[str, Any] = {"method": result["method"], "target": _point_record(result["target"]), "images": rows,
                               "sanity": None}
    if sanity is not None:
        rho = sanity["spearman"]
        write_csv(directory / "gradcam_sanity.csv", ["step_index", "step", "image", "path", "spearman"],
                  [(s, name, b, str(result["paths"][b]), float(rho[s, b]))
                   for s, name in enumerate(sanity["steps"]) for b in range(rho.shape[1])])
        arrays["sanity_spearman"] = rho.numpy()
        arrays["sanity_first_image_maps"] = sanity["first_image_maps"].numpy()
        save_figure(sanity_figure(result, title), directory, "gradcam_sanity")
        save_figure(sanity_maps_figure(result, title), directory, "gradcam_sanity_maps")
        records["sanity"] = {"steps": sanity["steps"], "spearman": rho, "mean_spearman": _nanmean_rows(rho),
                             "seed": sanity["seed"]}
    np.savez_compressed(directory / "gradcam_maps.npz", **arrays)
    return records


def _point_record(point: Any) -> dict[str, Any]:
    return {"name": point.name, "layout": point.layout, "kind": point.kind, "reduction": point.reduction,
            "prefix_tokens": point.prefix_tokens}


def _nanmean_rows(rho: torch.Tensor) -> list[float | None]:
    return [float(np.nanmean(r)) if np.isfinite(r).any() else None for r in rho.numpy()]
