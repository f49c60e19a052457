"""Checkpoint wrappers the official training codes of the zoo share, peeled off before each family's key mapping."""
from __future__ import annotations

from typing import Sequence

from timm.models import clean_state_dict


def unwrap_state_dict(checkpoint: dict, keys: Sequence[str]) -> dict:
    """The weights under the first of ``keys`` that holds a dict (the family's preference order), else
    ``checkpoint`` itself (already a bare state_dict), without DDP and torch.compile prefixes (timm's
    ``clean_state_dict``)."""
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return clean_state_dict(checkpoint[key])
    return clean_state_dict(checkpoint)
