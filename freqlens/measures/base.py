"""The measure protocol: declared streaming states that update, merge, sync and serialise alike.

A measure declares each state once with ``add_state(name, default, merge)``. Everything else follows
from that declaration: ``reset``, ``merge`` (two partial states, e.g. two halves of a dataset or two
GPUs), ``sync`` (all ranks of a ``torch.distributed`` group), ``state_dict`` / ``load_state_dict`` and
``to``. A state is a tensor of fixed size or a dict of such tensors keyed by probe point (filled on
first sight, since a probe point's map size is known only once it has produced an output).
Sums are kept in float64 so results do not depend on batch size or batch order beyond rounding.

Subclasses implement ``update(...)`` and ``compute()`` and set ``name`` and ``presets``.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, ClassVar, Literal, Mapping, TypeVar

import torch

Reduction = Literal["sum", "max", "min"]
_REDUCE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sum": torch.add,
    "max": torch.maximum,
    "min": torch.minimum,
}
_DIST_OP = {"sum": "SUM", "max": "MAX", "min": "MIN"}
State = torch.Tensor | dict[str, torch.Tensor]

MEASURES: dict[str, type["Measure"]] = {}
M = TypeVar("M", bound=type["Measure"])


def register_measure(cls: M) -> M:
    """Class decorator: make a measure known to the API and CLI under ``cls.name``."""
    if cls.name in MEASURES:
        raise ValueError(f"a measure named {cls.name!r} is already registered ({MEASURES[cls.name].__qualname__})")
    MEASURES[cls.name] = cls
    return cls


class Measure:
    """Base class of every streaming measure (see the module docstring)."""

    name: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self) -> None:
        self._defaults: dict[str, State] = {}
        self._reductions: dict[str, Reduction] = {}

    # -- declaration -------------------------------------------------------------------------------
    def add_state(self, name: str, default: State, merge: Reduction = "sum") -> None:
        """Declare a state; ``default`` is a tensor or ``{}`` (a dict filled per probe point)."""
        if merge not in _REDUCE:
            raise ValueError(f"state {name!r}: merge must be one of {sorted(_REDUCE)}, got {merge!r}")
        if isinstance(default, dict) and default:
            raise ValueError(f"state {name!r}: a dict state must start empty")
        self._defaults[name] = default
        self._reductions[name] = merge
        setattr(self, name, copy.deepcopy(default))

    def settings(self) -> dict[str, Any]:
        """The settings that define this measure's result (recorded in the provenance)."""
        return {}

    # -- protocol ----------------------------------------------------------------------------------
    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def compute(self) -> Any:
        raise NotImplementedError

    def settle(self) -> None:
        """Fold work that ``update`` deferred into the declared states (no-op unless a measure defers).

        A fast path may keep per-batch partial sums on the device and fold them in now and then; every
        method that reads or moves the states calls this first, and so must ``compute``.
        """

    def reset(self) -> None:
        """Return every state to its declared default."""
        for name, default in self._defaults.items():
            setattr(self, name, copy.deepcopy(default))

    def merge(self, other: "Measure") -> "Measure":
        """Fold another partial state of the same measure and settings into this one; returns self."""
        if type(other) is not type(self) or other.settings() != self.settings():
            raise ValueError(f"cannot merge {type(other).__name__}{other.settings()} into {type(self).__name__}{self.settings()}")
        self.settle()
        other.settle()
        for name, how in self._reductions.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = _REDUCE[how](mine[key], value.to(mine[key].device)) if key in mine else value.clone()
            else:
                setattr(self, name, _REDUCE[how](mine, theirs.to(mine.device)))
        return self

    def sync(self, group: Any = None) -> None:
        """All-reduce every state over a ``torch.distributed`` group (every rank must see the same keys)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        self.settle()
        for name, how in self._reductions.items():
            state = getattr(self, name)
            tensors = [state[k] for k in sorted(state)] if isinstance(state, dict) else [state]
            keys = sorted(state) if isinstance(state, dict) else None
            gathered: list[Any] = [None] * dist.get_world_size(group)
            dist.all_gather_object(gathered, keys, group=group)
            if any(g != keys for g in gathered):
                raise RuntimeError(f"state {name!r}: ranks saw different probe points: {gathered}")
            for t in tensors:
                dist.all_reduce(t, op=getattr(dist.ReduceOp, _DIST_OP[how]), group=group)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat copy of the state: ``name`` for tensors, ``name/key`` for dict entries."""
        self.settle()
        out = {}
        for name in self._defaults:
            state = getattr(self, name)
            if isinstance(state, dict):
                out.update({f"{name}/{k}": v.detach().clone() for k, v in state.items()})
            else:
                out[name] = state.detach().clone()
        return out

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Replace the state by one written by ``state_dict`` (unknown names are an error)."""
        self.reset()
        for flat, value in state_dict.items():
            name, _, key = flat.partition("/")
            if name not in self._defaults:
                raise KeyError(f"{type(self).__name__} has no state {name!r}")
            if isinstance(self._defaults[name], dict):
                getattr(self, name)[key] = value.clone()
            else:
                setattr(self, name, value.clone())

    def to(self, device: torch.device | str) -> "Measure":
        """Move every state to ``device``; returns self."""
        self.settle()
        for name in self._defaults:
            state = getattr(self, name)
            if isinstance(state, dict):
                setattr(self, name, {k: v.to(device) for k, v in state.items()})
            else:
                setattr(self, name, state.to(device))
        return self

    @classmethod
    def check_preset(cls, preset: str) -> None:
        """Raise ValueError naming the known presets unless ``preset`` is one of them."""
        if preset not in cls.presets:
            raise ValueError(f"{cls.name}: unknown preset {preset!r}; known presets: {sorted(cls.presets)}")

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> "Measure":
        """Build the measure with a published protocol's settings (``overrides`` change single values)."""
        cls.check_preset(preset)
        return cls(**{**cls.presets[preset], **overrides})
