"""Safe checkpoint loading: every layout seen in the wild, without executing pickled code.

Files are read with ``torch.load(weights_only=True)``; the metadata objects official checkpoints pickle
beside their tensors load as inert stand-ins (:mod:`freqlens.io.standins`). Anything else needs the user's
explicit ``trust=True`` (``--trust-checkpoint``), which unpickles with ``weights_only=False``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal, Mapping

import torch

from freqlens.errors import FreqlensError, UsageError
from freqlens.io import standins

WeightsChoice = Literal["auto", "model", "ema"]
MODEL_KEYS = ("model", "state_dict", "module", "net", "network", "params")
EMA_KEYS = ("model_ema", "state_dict_ema", "ema", "ema_state_dict")
STRIP_PREFIXES = ("module.", "_orig_mod.")


@dataclasses.dataclass
class LoadedCheckpoint:
    """A state_dict and where it came from."""

    path: str
    sha256: str
    state_dict: dict[str, torch.Tensor]
    source_key: str | None  # the sub-dict taken ("model", "model_ema", ...), None for a bare state_dict
    weights: str  # "model" or "ema"
    format: str  # "safetensors" or "torch"
    trusted: bool
    stripped_prefixes: list[str]
    other_keys: list[str]  # top-level entries not used (metadata, optimizer, ...)

    def provenance(self) -> dict[str, Any]:
        return {
            "path": self.path, "sha256": self.sha256, "format": self.format, "source_key": self.source_key,
            "weights": self.weights, "trusted_pickle": self.trusted, "stripped_prefixes": self.stripped_prefixes,
            "ignored_entries": self.other_keys,
        }


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | Path, trust: bool = False) -> Any:
    """Read a checkpoint file's whole object safely (safetensors, or torch zip/legacy pickle)."""
    path = Path(path)
    if not path.is_file():
        raise FreqlensError(f"checkpoint {str(path)!r} does not exist", hint="check the --ckpt path")
    if path.stat().st_size == 0:
        raise FreqlensError(f"checkpoint {str(path)!r} is empty (0 bytes)", hint="the file was not written completely; download or save it again")
    if _is_safetensors(path):
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise FreqlensError(f"checkpoint {str(path)!r} is not a readable safetensors file: {exc}") from exc
    if trust:
        warnings.warn(f"loading {path} with weights_only=False: its pickled code runs (--trust-checkpoint)", stacklevel=2)
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise FreqlensError(f"checkpoint {str(path)!r} could not be read: {exc}") from exc
    standins.register()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _looks_like_torch_file(path):
            raise FreqlensError(f"checkpoint {str(path)!r} is not a PyTorch or safetensors file",
                                hint="check that --ckpt points at the weights file") from exc
        unsafe = _unsafe_globals(path)
        raise FreqlensError(
            f"checkpoint {str(path)!r} pickles code that freqlens will not run: {', '.join(unsafe) or exc}",
            hint="only if you trust where the file came from, pass --trust-checkpoint (trust=True)",
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FreqlensError(
            f"checkpoint {str(path)!r} is not a readable PyTorch or safetensors file ({type(exc).__name__}: {exc})",
            hint="the file may be truncated or of another format; check its size and source",
        ) from exc


def _is_safetensors(path: Path) -> bool:
    """By its suffix, else by its header: an 8-byte length, then the JSON header's '{'."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def _looks_like_torch_file(path: Path) -> bool:
    """A zip archive (torch >= 1.6) or a pickle stream (legacy torch.save), judged by the first bytes."""
    with open(path, "rb") as f:
        head = f.read(2)
    return zipfile.is_zipfile(path) or head[:1] == b"\x80"


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # legacy (non-zip) files cannot be scanned; the unpickling error says enough
        return []


def select_state_dict(obj: Any, weights: WeightsChoice = "auto") -> tuple[dict[str, torch.Tensor], str | None, str, list[str]]:
    """Pick the state_dict out of a checkpoint container; returns (state_dict, key, "model"|"ema", other keys)."""
    if weights not in ("auto", "model", "ema"):
        raise UsageError(f"weights must be auto, model or ema, got {weights!r}")
    if not isinstance(obj, Mapping):
        raise FreqlensError(f"checkpoint holds a {type(obj).__name__}, not a state_dict or a dict of them",
                            hint="save model.state_dict() rather than the model object")
    if _is_tensor_dict(obj):
        if weights == "ema":
            raise FreqlensError("--weights ema: this checkpoint is a bare state_dict with no EMA weights",
                                hint="use --weights auto or model")
        return dict(obj), None, "model", []
    model_key = next((k for k in MODEL_KEYS if isinstance(obj.get(k), Mapping) and _is_tensor_dict(obj[k])), None)
    ema_key = next((k for k in EMA_KEYS if isinstance(obj.get(k), Mapping) and _is_tensor_dict(obj[k])), None)
    if weights == "ema" and ema_key is None:
        raise FreqlensError(f"--weights ema: no EMA weights in this checkpoint (entries: {sorted(map(str, obj))})",
                            hint="use --weights model")
    if weights == "model" and model_key is None:
        raise FreqlensError(f"--weights model: no model weights in this checkpoint (entries: {sorted(map(str, obj))})",
                            hint="use --weights ema" if ema_key else "save the model's state_dict")
    key, kind = (ema_key, "ema") if weights == "ema" or (weights == "auto" and model_key is None) else (model_key, "model")
    if key is None:
        raise FreqlensError(f"found no state_dict in this checkpoint (entries: {sorted(map(str, obj))})",
                            hint=f"expected a bare state_dict or one of the entries {MODEL_KEYS + EMA_KEYS}")
    return dict(obj[key]), key, kind, sorted(str(k) for k in obj if k != key)


def _is_tensor_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(k, str) for k in obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove wrapper prefixes (DDP ``module.``, ``torch.compile``'s ``_orig_mod.``) shared by every key."""
    stripped = []
    for prefix in STRIP_PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
            stripped.append(prefix)
    return state_dict, stripped


def load_checkpoint(path: str | Path, weights: WeightsChoice = "auto", trust: bool = False) -> LoadedCheckpoint:
    """Read ``path`` safely and take its state_dict (see :func:`select_state_dict`)."""
    obj = read_checkpoint(path, trust=trust)
    state_dict, key, kind, others = select_state_dict(obj, weights)
    state_dict, stripped = strip_prefixes(state_dict)
    return LoadedCheckpoint(
        path=str(path), sha256=sha256_of(path), state_dict=state_dict, source_key=key, weights=kind,
        format="safetensors" if _is_safetensors(Path(path)) else "torch",
        trusted=trust, stripped_prefixes=stripped, other_keys=others,
    )


def apply_to_model(model: torch.nn.Module, checkpoint: LoadedCheckpoint) -> None:
    """Run the family's ``checkpoint_filter_fn`` and load strictly; a mismatch raises with a readable key diff."""
    state_dict = checkpoint.state_dict
    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state_dict = filter_fn(state_dict, model)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise FreqlensError(
            f"checkpoint {checkpoint.path!r} does not fit {type(model).__name__}:\n" + _key_diff(missing, unexpected, mismatched),
            hint="is this checkpoint for another architecture or variant? check --model",
        )
    model.load_state_dict(state_dict)


def _key_diff(missing: list[str], unexpected: list[str], mismatched: list[str], limit: int = 8) -> str:
    lines = []
    for title, keys in (("missing in checkpoint", missing), ("unexpected in checkpoint", unexpected), ("shape mismatch", mismatched)):
        if keys:
            shown = "\n".join(f"    {k}" for k in keys[:limit])
            more = f"\n    ... and {len(keys) - limit} more" if len(keys) > limit else ""
            lines.append(f"  {title} ({len(keys)}):\n{shown}{more}")
    return "\n".join(lines)
