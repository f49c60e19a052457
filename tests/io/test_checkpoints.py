"""Every checkpoint layout loads safely; anything that would run code is refused unless trusted."""
from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
import timm
import torch
from golden import assert_weights_equal, install_fake_yacs
from safetensors.torch import save_file

from freqlens.errors import FreqlensError
from freqlens.io.checkpoints import apply_to_model, load_checkpoint, read_checkpoint
from freqlens.loading import load_model


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", num_classes=7).state_dict()


class _Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


@pytest.mark.parametrize("layout", ["plain", "model", "state_dict", "module_prefix", "ema_only", "metadata", "yacs"])
def test_layouts_load_and_report_their_source(tmp_path, weights, layout, monkeypatch):
    path = tmp_path / "ckpt.pth"
    if layout == "plain":
        obj, key = weights, None
    elif layout == "model":
        obj, key = {"model": weights, "epoch": 3}, "model"
    elif layout == "state_dict":
        obj, key = {"state_dict": weights, "meta": {"mmseg_version": "1.2"}}, "state_dict"
    elif layout == "module_prefix":
        obj, key = {"model": {f"module.{k}": v for k, v in weights.items()}}, "model"
    elif layout == "ema_only":
        obj, key = {"model_ema": weights}, "model_ema"
    elif layout == "metadata":
        obj = {"model": weights, "args": argparse.Namespace(lr=0.1), "acc": np.float64(81.2), "hist": np.arange(3)}
        key = "model"
    else:
        cfg_node = install_fake_yacs(monkeypatch)
        obj, key = {"model": weights, "config": cfg_node({"MODEL": cfg_node({"NAME": "x"})})}, "model"
    torch.save(obj, path)
    monkeypatch.delitem(sys.modules, "yacs.config", raising=False)
    loaded = load_checkpoint(path)
    assert loaded.source_key == key
    assert loaded.weights == ("ema" if layout == "ema_only" else "model")
    assert loaded.stripped_prefixes == (["module."] if layout == "module_prefix" else [])
    assert set(loaded.state_dict) == set(weights)
    model = timm.create_model("test_resnet", num_classes=7)
    apply_to_model(model, loaded)
    assert_weights_equal(model, weights)


def test_yacs_config_comes_back_as_plain_data(tmp_path, weights, monkeypatch):
    cfg_node = install_fake_yacs(monkeypatch)
    torch.save({"model": weights, "config": cfg_node({"DATA": cfg_node({"IMG_SIZE": 224})})}, tmp_path / "c.pth")
    monkeypatch.delitem(sys.modules, "yacs.config")
    config = read_checkpoint(tmp_path / "c.pth")["config"]
    assert config["DATA"]["IMG_SIZE"] == 224 and type(config).__module__ == "collections"


def test_weights_choice_is_explicit(tmp_path, weights):
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in weights.items()}
    torch.save({"model": weights, "model_ema": ema}, tmp_path / "both.pth")
    assert load_checkpoint(tmp_path / "both.pth").weights == "model"  # auto: the model weights, not silently EMA
    taken = load_checkpoint(tmp_path / "both.pth", weights="ema")
    assert taken.source_key == "model_ema" and torch.equal(taken.state_dict["fc.bias"], ema["fc.bias"])
    torch.save(weights, tmp_path / "plain.pth")
    with pytest.raises(FreqlensError, match="no EMA weights"):
        load_checkpoint(tmp_path / "plain.pth", weights="ema")


def test_safetensors(tmp_path, weights):
    save_file({k: v.contiguous() for k, v in weights.items()}, tmp_path / "w.safetensors")
    loaded = load_checkpoint(tmp_path / "w.safetensors")
    assert loaded.format == "safetensors" and set(loaded.state_dict) == set(weights)


def test_pickled_code_is_refused_unless_trusted(tmp_path, weights):
    torch.save({"model": weights, "hook": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(FreqlensError, match="builtins.print") as info:
        load_checkpoint(tmp_path / "evil.pth")
    assert "--trust-checkpoint" in info.value.hint
    with pytest.warns(UserWarning, match="weights_only=False"):
        assert load_checkpoint(tmp_path / "evil.pth", trust=True).trusted


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"not a checkpoint at all", "not a PyTorch or safetensors file"), (b"PK\x03\x04broken zip", "not a readable")])
def test_empty_and_corrupt_files(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(FreqlensError, match=message):
        load_checkpoint(path)


def test_missing_file():
    with pytest.raises(FreqlensError, match="does not exist"):
        load_checkpoint("no/such/file.pth")


def test_other_architecture_shows_a_key_diff(tmp_path):
    torch.save(timm.create_model("test_vit").state_dict(), tmp_path / "vit.pth")
    with pytest.raises(FreqlensError) as info:
        load_model("test_resnet", tmp_path / "vit.pth")
    text = str(info.value)
    assert "missing in checkpoint" in text and "unexpected in checkpoint" in text and "conv1.0.weight" in text and "cls_token" in text


def test_classifier_size_follows_the_checkpoint(tmp_path, weights):
    torch.save(weights, tmp_path / "seven.pth")
    loaded = load_model("test_resnet", tmp_path / "seven.pth")
    assert loaded.model.fc.out_features == 7 and not loaded.random_weights
    assert loaded.provenance()["checkpoint"]["sha256"] == loaded.checkpoint.sha256


def test_no_checkpoint_warns_loudly():
    with pytest.warns(UserWarning, match="RANDOM"):
        assert load_model("test_resnet").random_weights
