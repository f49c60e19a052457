"""freqlens: how vision backbones treat frequency.

Importing freqlens registers the model zoo (``freqlens.models``) and the probe-suite models with timm;
``freqlens.spectrum(...)``, ``freqlens.report(...)`` and the other analyses are the API of ``freqlens.api``.
"""
from freqlens.errors import FreqlensError, UsageError
from freqlens.io import standins as _standins  # noqa: F401  (official checkpoints' metadata loads safely)
from freqlens.lens import Lens, ProbePoint

__version__ = "0.1.0"

__all__ = ["FreqlensError", "Lens", "ProbePoint", "UsageError", "__version__"]

import freqlens.models  # noqa: E402,F401  (registers the zoo with timm)
import freqlens.probes  # noqa: E402,F401  (registers the probe-suite models with timm)


def __getattr__(name: str):
    """``freqlens.spectrum(...)``, ``freqlens.report(...)`` and friends: the API, imported on first use."""
    import freqlens.api as api

    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'freqlens' has no attribute {name!r}")
