"""Provenance: everything needed to tell how a result was made, attached to every result file."""
from __future__ import annotations

import datetime
import platform
import sys
from typing import Any

import numpy as np
import timm
import torch

import freqlens
from freqlens.runner import rank_and_world


def environment(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Versions, device and dtype of this run."""
    info: dict[str, Any] = {
        "freqlens": freqlens.__version__, "torch": torch.__version__, "timm": timm.__version__,
        "numpy": np.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "device": str(device), "dtype": str(dtype).removeprefix("torch."), "processes": rank_and_world()[1],
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info


def provenance(*, model: dict[str, Any], images: dict[str, Any], preprocessing: dict[str, Any],
               measure: dict[str, Any], device: torch.device, dtype: torch.dtype, seed: int) -> dict[str, Any]:
    """The provenance block of a results.json."""
    return {
        "model": model,
        "images": images,
        "preprocessing": preprocessing,
        "measure": measure,
        "seed": seed,
        "environment": environment(device, dtype),
        "command": _command(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _command() -> list[str] | None:
    """The command line of a ``freqlens`` (or ``python -m freqlens``) run; None from the Python API."""
    if sys.argv and sys.argv[0].endswith(("freqlens", "freqlens/__main__.py")):
        return ["freqlens", *sys.argv[1:]]
    return None
