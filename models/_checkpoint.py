"""Checkpoint wrappers the official training codes of the zoo share, peeled off before each family's key mapping."""
from __future__ import annotations

from typing import Sequence

import torch


def unwrap_state_dict(checkpoint: dict, keys: Sequence[str]) -> dict:
    """The weights under the first of ``keys`` that holds a dict (the family's preference order), else
    ``checkpoint`` itself (already a bare state_dict)."""
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def strip_ddp_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DDP's ``module.`` from every key that has it."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}
