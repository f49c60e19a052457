"""Probe points and the lens that observes them."""
from freqlens.lens.lens import Lens, Observer, preserved_state
from freqlens.lens.probes import LAYOUTS, ProbePoint, default_probe_points, probe_points_for, select_probe_points

__all__ = [
    "LAYOUTS",
    "Lens",
    "Observer",
    "ProbePoint",
    "default_probe_points",
    "preserved_state",
    "probe_points_for",
    "select_probe_points",
]
