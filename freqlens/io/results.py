"""Writing results users read: JSON with provenance, CSV tables, figures as PDF + SVG + PNG."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

FIGURE_FORMATS = ("pdf", "svg", "png")


def to_jsonable(value: Any) -> Any:
    """Tensors and arrays to lists, NaN/inf to null, so the JSON is strict and portable."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in row])
    return path


def save_figure(fig: Any, directory: Path, stem: str) -> list[Path]:
    """Save a matplotlib figure as vector PDF and SVG plus a 200-dpi PNG; closes the figure."""
    import matplotlib.pyplot as plt

    paths = []
    for fmt in FIGURE_FORMATS:
        path = directory / f"{stem}.{fmt}"
        fig.savefig(path, dpi=200 if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths
