"""Inert stand-ins for the metadata objects official training scripts pickle into checkpoints.

Official checkpoints carry configs and run arguments next to the weights: yacs ``CfgNode`` (Swin/VMamba
family), OmegaConf ``DictConfig`` (Hydra scripts such as SpaRTAN's ``src/main.py``), ``argparse.Namespace``
and numpy scalars/arrays (DeiT-style scripts), mmcv ``ConfigDict``. ``torch.load(weights_only=True)`` (what
freqlens and timm's ``pretrained_cfg_overlay=dict(file=...)`` both use) rejects them. Importing this module
allowlists those class names with torch, each mapped to plain data: dict-like configs become
``OrderedDict`` (the only dict type whose items and attributes torch's safe unpickler may set), OmegaConf
nodes the small classes below whose ``__dict__`` is filled and which run no code. None of the original
libraries needs to be installed. The registration is process-wide and only ever maps names to data
holders. :func:`to_plain` turns a loaded OmegaConf config into dicts and lists.
"""
from __future__ import annotations

import argparse
import collections
import typing
from typing import Any

import numpy as np
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
_DICT_CONFIGS = ("yacs.config.CfgNode", "easydict.EasyDict", "mmcv.utils.config.ConfigDict",
                 "mmengine.config.config.ConfigDict", "addict.addict.Dict")
STANDINS += [(collections.OrderedDict, path) for path in _DICT_CONFIGS]


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    """Rebuild a numpy scalar from its dtype and raw bytes (numpy's own pickle format), nothing else."""
    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 2 moved these
    STANDINS += [(np._core.multiarray._reconstruct, f"{_module}._reconstruct"), (_numpy_scalar, f"{_module}.scalar")]
# numpy's dtype classes (numpy.dtypes.Float64DType, ...) appear in pickled dtypes
_NUMPY_DTYPES = [type(np.dtype(code)) for code in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1", "U", "O")]

# Plain globals that the metadata refers to (type annotations, containers, the run's arguments); all inert.
PLAIN_GLOBALS: list[Any] = [typing.Any, collections.defaultdict, dict, list, set, tuple, int, float, str, bool, bytes,
                            argparse.Namespace, np.ndarray, np.dtype, *_NUMPY_DTYPES]



def register() -> None:
    """Allowlist every stand-in with torch (again where something removed one: torch's ``safe_globals``
    context manager, which timm's loader uses, removes on exit what it added even if it was there before)."""
    present = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([g for g in [*STANDINS, *PLAIN_GLOBALS] if g not in present])


register()


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
