"""Ground truth for the spectrum measure: it finds the band the probe models were trained to use."""
from __future__ import annotations

import pytest
import torch

from freqlens.lens import Lens
from freqlens.loading import load_model
from freqlens.measures.spectral_energy import SpectralEnergy
from freqlens.probes import make_split
from freqlens.probes.train import normalize

CKPTS = "freqlens/data/checkpoints"


def _stem_hf_fraction(model: torch.nn.Module, images: torch.Tensor) -> float:
    measure = SpectralEnergy()
    stem = [p for p in model.probe_points if p.name == "stem"]
    with Lens(model, stem, lambda p, f: measure.update({p.name: f})) as lens, torch.no_grad():
        lens.model(normalize(images, model))
    return measure.compute()["stem"].hf_fraction


@pytest.fixture(scope="module")
def hf_images() -> torch.Tensor:
    return make_split("hf", "test", 200, 0)[0]


def test_spectrum_tells_the_hf_model_from_the_lf_model(hf_images):
    hf = load_model("probe_cnn", f"{CKPTS}/probe_cnn_hf.safetensors").model
    lf = load_model("probe_cnn", f"{CKPTS}/probe_cnn_lf.safetensors").model
    assert _stem_hf_fraction(hf, hf_images) > _stem_hf_fraction(lf, hf_images) + 0.3


def test_spectrum_tells_a_trained_model_from_its_random_twin(hf_images):
    trained = load_model("probe_cnn", f"{CKPTS}/probe_cnn_hf.safetensors").model
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM"):
        twin = load_model("probe_cnn").model
    assert abs(_stem_hf_fraction(trained, hf_images) - _stem_hf_fraction(twin, hf_images)) > 0.1
