"""Inert stand-ins for the OmegaConf config objects that official training scripts pickle into checkpoints.

Hydra/OmegaConf training scripts (e.g. SpaRTAN's ``src/main.py``) save the run's ``DictConfig`` next to
the weights, and ``torch.load(weights_only=True)`` (what timm uses for
``pretrained_cfg_overlay=dict(file=...)``) rejects such files. Importing this module allowlists the
OmegaConf class names with torch, mapped to the plain data classes below: unpickling fills their
``__dict__`` and runs no OmegaConf code (OmegaConf need not be installed). The registration is
process-wide, so any ``weights_only`` load in the process returns these stand-ins for OmegaConf
objects instead of failing. :func:`to_plain` turns a loaded config into dicts and lists.
"""
from __future__ import annotations

import collections
import typing
from typing import Any

import torch


class _Metadata:
    """Stand-in for ``omegaconf.base.Metadata`` / ``ContainerMetadata`` (typing and flag information)."""


class _Container:
    """Stand-in for an OmegaConf node: state ``_metadata``, ``_parent`` and ``_content`` or ``_val``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({to_plain(self)!r})"


class DictConfigStandIn(_Container):
    """Unpickled ``omegaconf.DictConfig``; ``_content`` maps keys to nodes."""


class ListConfigStandIn(_Container):
    """Unpickled ``omegaconf.ListConfig``; ``_content`` is a list of nodes."""


class ValueNodeStandIn(_Container):
    """Unpickled OmegaConf value node (``AnyNode``, ``StringNode``, ...); the value is ``_val``."""


_VALUE_NODES = ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode")

STANDINS: list[tuple[Any, str]] = [
    (DictConfigStandIn, "omegaconf.dictconfig.DictConfig"),
    (ListConfigStandIn, "omegaconf.listconfig.ListConfig"),
    (_Metadata, "omegaconf.base.Metadata"),
    (_Metadata, "omegaconf.base.ContainerMetadata"),
    *[(ValueNodeStandIn, f"omegaconf.nodes.{name}") for name in _VALUE_NODES],
]
# Plain globals that OmegaConf metadata refers to (type annotations, the resolver cache); all inert.
PLAIN_GLOBALS: list[Any] = [typing.Any, collections.defaultdict, dict, list, int, float, str, bool, bytes]

torch.serialization.add_safe_globals([*STANDINS, *PLAIN_GLOBALS])


def to_plain(obj: Any) -> Any:
    """Dicts, lists and values of an unpickled OmegaConf config (other objects are returned unchanged)."""
    if isinstance(obj, DictConfigStandIn):
        content = obj.__dict__.get("_content")
        return content if not isinstance(content, dict) else {k: to_plain(v) for k, v in content.items()}
    if isinstance(obj, ListConfigStandIn):
        content = obj.__dict__.get("_content")
        return content if not isinstance(content, list) else [to_plain(v) for v in content]
    if isinstance(obj, ValueNodeStandIn):
        return obj.__dict__.get("_val")
    return obj
