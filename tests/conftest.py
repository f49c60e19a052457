"""Shared test settings: the device under test from FREQLENS_TEST_DEVICE, and float32 meaning float32."""
from __future__ import annotations

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device(os.environ.get("FREQLENS_TEST_DEVICE", "cpu"))


@pytest.fixture(autouse=True)
def _no_tf32():
    """TF32 (on by default for cuDNN convolutions) would make CUDA float32 checks differ by ~1e-4."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
