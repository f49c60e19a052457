"""Checkpoint wrappers the official training codes of the zoo share, peeled off before each family's key mapping
(DDP and torch.compile prefixes: timm's ``clean_state_dict``)."""
from __future__ import annotations

from typing import Sequence


def unwrap_state_dict(checkpoint: dict, keys: Sequence[str]) -> dict:
    """The weights under the first of ``keys`` that holds a dict (the family's preference order), else
    ``checkpoint`` itself (already a bare state_dict)."""
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint

