"""Synthetic probe tasks with a known label band, and the small models trained on them.

Importing this package registers ``probe_cnn`` and ``probe_vit`` with timm.
"""
from freqlens.probes import models as _probe_models  # noqa: F401  (registers the probe models with timm)
from freqlens.probes.task import (
    HIGH_BAND,
    LOW_BAND,
    TASKS,
    ProbeTask,
    band_pass,
    band_stop,
    generate,
    get_task,
    label_band,
    make_split,
    oracle_predict,
)

__all__ = [
    "HIGH_BAND",
    "LOW_BAND",
    "TASKS",
    "ProbeTask",
    "band_pass",
    "band_stop",
    "generate",
    "get_task",
    "label_band",
    "make_split",
    "oracle_predict",
]
