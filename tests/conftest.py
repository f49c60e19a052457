"""Shared test settings: deterministic CPU threads and the device under test from FREQLENS_TEST_DEVICE."""
from __future__ import annotations

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device(os.environ.get("FREQLENS_TEST_DEVICE", "cpu"))
