"""Checks shared by every zoo family: golden files (protocol: ../shared/golden/README.md) and probe points."""
from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

GOLDEN_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
_FEATURE_STATS = ("mean", "std", "abs_mean", "min", "max")


def _detfill():
    spec = importlib.util.spec_from_file_location("detfill", GOLDEN_DIR / "detfill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DETFILL = _detfill()
det_fill_ = _DETFILL.det_fill_
det_input = _DETFILL.det_input


def load_golden(variant: str) -> dict:
    return json.loads((GOLDEN_DIR / f"{variant}.json").read_text())


def golden_variants(prefix: str) -> list[str]:
    return sorted(p.stem for p in GOLDEN_DIR.glob(f"{prefix}*.json"))


def golden_dtype(golden: dict) -> torch.dtype:
    return {"float64": torch.float64, "float32": torch.float32}[golden["dtype_used"]]


def golden_input(golden: dict) -> torch.Tensor:
    return det_input(tuple(golden["input"]["shape"]), golden["input"]["seed"], golden_dtype(golden))


def assert_state_dict_matches(model: torch.nn.Module, golden: dict) -> None:
    """Same names, shapes and order as the official state_dict, and the same parameter count."""
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    theirs = [(name, shape) for name, shape, _dtype in golden["state_dict"]]
    if ours != theirs:
        ours_names, theirs_names = [k for k, _ in ours], [k for k, _ in theirs]
        missing = [k for k in theirs_names if k not in ours_names][:10]
        extra = [k for k in ours_names if k not in theirs_names][:10]
        first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        raise AssertionError(
            f"{golden['variant']}: state_dict differs (ours {len(ours)}, official {len(theirs)} entries); "
            f"missing {missing}, unexpected {extra}; first difference at #{first}: "
            f"ours {ours[first] if first < len(ours) else None} vs official {theirs[first] if first < len(theirs) else None}"
        )
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == golden["num_params"], f"{golden['variant']}: {n_params} params, official {golden['num_params']}"


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """‖ours − ref‖ / ‖ref‖, in float64."""
    ours, ref = ours.double(), ref.double()
    return float((ours - ref).norm() / ref.norm().clamp_min(1e-30))


def assert_weights_equal(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    """Every tensor of ``expected`` (not empty) equals the model's own of that name; a failure names the keys."""
    state = model.state_dict()
    assert expected and set(expected) <= set(state), f"not in the model: {sorted(set(expected) - set(state))[:5]}"
    different = [k for k, v in expected.items() if not torch.equal(state[k], v)]
    assert not different, f"weights differ: {different[:5]}"


def assert_output_matches(output, golden: dict, tol: float) -> None:
    """Logits, or per-feature-map statistics and samples, within relative error ``tol``."""
    name = golden["variant"]
    if golden["output_kind"] == "logits":
        ref = torch.tensor(golden["output"], dtype=torch.float64)
        ours = output.detach().to(torch.float64).cpu()
        assert list(ours.shape) == list(ref.shape), f"{name}: output shape {list(ours.shape)} vs {list(ref.shape)}"
        err = rel_err(ours, ref)
        assert err < tol, f"{name}: logits relative error {err:.3e} >= {tol:.0e}"
        return
    assert len(output) == len(golden["output"]), f"{name}: {len(output)} feature maps vs {len(golden['output'])}"
    for i, (feat, ref) in enumerate(zip(output, golden["output"])):
        feat = feat.detach().to(torch.float64).cpu()
        assert list(feat.shape) == ref["shape"], f"{name}: map {i} shape {list(feat.shape)} vs {ref['shape']}"
        stats = {
            "mean": feat.mean(), "std": feat.std(), "abs_mean": feat.abs().mean(), "min": feat.min(), "max": feat.max()
        }
        for key in _FEATURE_STATS:
            err = abs(float(stats[key]) - ref[key]) / max(abs(ref[key]), 1e-12)
            assert err < tol, f"{name}: map {i} {key} {float(stats[key])!r} vs {ref[key]!r} (rel {err:.2e})"
        samples = feat.flatten()[torch.tensor(ref["sample_flat_index"])]
        err = rel_err(samples, torch.tensor(ref["sample_value"], dtype=torch.float64))
        assert err < tol, f"{name}: map {i} samples relative error {err:.3e} >= {tol:.0e}"


def assert_probe_maps_declared(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """Run ``x`` under the lens on all of ``model.probe_points``; each must give a 4-D map of height H/r, r its
    declared reduction. Returns {name: (point, shape)} for the family's own checks."""
    from freqlens.lens import Lens

    shapes = {}
    with Lens(model, model.probe_points, lambda p, f: shapes.__setitem__(p.name, (p, tuple(f.shape)))) as lens:
        with torch.no_grad():
            lens.model(x)
    assert set(shapes) == {p.name for p in model.probe_points}
    for point, shape in shapes.values():
        assert len(shape) == 4 and shape[2] == x.shape[2] // point.reduction, (point, shape)
    return shapes


def install_fake_yacs(monkeypatch) -> type:
    """Put a stand-in ``yacs.config`` into ``sys.modules`` and return its CfgNode: a dict subclass with
    attribute state, pickled as ``yacs.config.CfgNode`` like the `config` entry of the official training
    codes' checkpoints. Callers remove ``yacs.config`` again after saving, so that loading runs without yacs."""

    class CfgNode(dict):
        def __init__(self, init=None, **entries):
            super().__init__(init or {}, **entries)
            self.__dict__["__immutable__"] = False

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    module = types.ModuleType("yacs.config")
    module.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, "yacs", types.ModuleType("yacs"))
    monkeypatch.setitem(sys.modules, "yacs.config", module)
    return CfgNode
