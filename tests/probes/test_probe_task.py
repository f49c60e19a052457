"""Ground truth for the probe suite: the label lives in its band, and the shipped models read that band."""
from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from freqlens.probes import HIGH_BAND, LOW_BAND, band_pass, band_stop, generate, get_task, label_band, make_split
from freqlens.probes import oracle_predict
from freqlens.probes.models import CHECKPOINT_DIR
from freqlens.probes.task import band_mask
from freqlens.probes.train import evaluate, normalize, read_recipe, save_checkpoint, train

TASKS = ("hf", "lf")
SHIPPED = sorted(p.stem for p in CHECKPOINT_DIR.glob("probe_*.safetensors"))  # e.g. probe_cnn_hf
PAIRS = sorted({s[:-3] for s in SHIPPED if f"{s[:-3]}_hf" in SHIPPED and f"{s[:-3]}_lf" in SHIPPED})
N_PROBE = 500  # images for the band-stop and gradient checks: chance is 0.25 +- 0.02 at this size


def _tag(stem: str) -> str:
    """``probe_cnn_hf`` -> timm name ``probe_cnn.hf``."""
    arch, task = stem.rsplit("_", 1)
    return f"{arch}.{task}"


def _accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(normalize(images, model)).argmax(dim=1) == labels).float().mean().item()


def _band_ratio(power: torch.Tensor, task: str) -> float:
    """Power in the task's label band over power in its distractor band, for an unshifted (H, W) map."""
    t = get_task(task)
    h, w = power.shape
    return (power[band_mask(h, w, t.label_band)].sum() / power[band_mask(h, w, t.distractor_band)].sum()).item()


def _stem_power(model: torch.nn.Module) -> torch.Tensor:
    """Power spectrum (32x32, unshifted) of the first conv's filters, summed over filters and channels."""
    weight = model.stem.conv.weight.detach().double()
    return (torch.fft.fft2(weight, s=(32, 32)).abs() ** 2).sum(dim=(0, 1))


def _input_grad_power(model: torch.nn.Module, task: str) -> torch.Tensor:
    """Power spectrum of d(true-class logit)/d(input) over test images, summed over images and channels."""
    images, labels = make_split(task, "test", 200)
    x = normalize(images, model).requires_grad_(True)
    model(x).gather(1, labels[:, None]).sum().backward()
    return (torch.fft.fft2(x.grad.double()).abs() ** 2).sum(dim=(0, 1))


def _twin(stem: str) -> torch.nn.Module:
    """The shipped model's randomly initialised twin: same architecture and seed, no training."""
    recipe = read_recipe(CHECKPOINT_DIR / f"{stem}.safetensors")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe["seed"])
        return timm.create_model(recipe["model"]).eval()


@pytest.fixture(scope="module")
def shipped() -> dict[str, torch.nn.Module]:
    return {stem: timm.create_model(_tag(stem), pretrained=True).eval() for stem in SHIPPED}


def test_bands_are_stated_and_disjoint():
    assert label_band("hf") == HIGH_BAND == (5 / 16, 7 / 16)
    assert label_band("lf") == LOW_BAND == (1 / 16, 3 / 16)
    assert get_task("hf").distractor_band == LOW_BAND and get_task("lf").distractor_band == HIGH_BAND
    assert not (band_mask(32, 32, HIGH_BAND) & band_mask(32, 32, LOW_BAND)).any()
    with pytest.raises(ValueError, match="unknown probe task 'mf'"):
        get_task("mf")


def test_generation_is_deterministic_and_splits_differ():
    a, ya = make_split("hf", "train", 64, seed=3)
    b, yb = make_split("hf", "train", 64, seed=3)
    c, _ = make_split("hf", "test", 64, seed=3)
    assert a.shape == (64, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.allclose(a, c)
    assert abs(a.mean().item() - 0.5) < 0.05 and 0.1 < a.std().item() < 0.2
    # torch's CPU generator keeps 32 bits of a seed: larger ones would silently alias smaller ones.
    with pytest.raises(ValueError, match="2\\*\\*32"):
        generate("hf", 4, 2**32 + 3)
    with pytest.raises(ValueError, match="2\\*\\*31"):
        make_split("hf", "train", 4, seed=2**31)


@pytest.mark.parametrize("task", TASKS)
def test_outside_the_label_band_images_do_not_depend_on_the_label(task):
    """Same seed, every label shifted: images differ, but not after a band-stop of the label band."""
    n, seed = 128, 7
    images, labels = generate(task, n, seed)
    shifted, _ = generate(task, n, seed, labels=(labels + 1) % get_task(task).num_classes)
    band = label_band(task)
    assert (images - shifted).abs().max() > 0.1
    torch.testing.assert_close(band_stop(images, band), band_stop(shifted, band), atol=1e-5, rtol=0)
    assert (band_pass(images, band) - band_pass(shifted, band)).abs().max() > 0.1


@pytest.mark.parametrize("task", TASKS)
def test_oracle_reads_the_label_band_and_ignores_the_distractor(task):
    images, labels = make_split(task, "test", N_PROBE)
    t = get_task(task)
    assert (oracle_predict(task, images) == labels).float().mean() > 0.99
    assert (oracle_predict(task, band_stop(images, t.distractor_band)) == labels).float().mean() > 0.99
    # The distractor looks like a label at the wrong frequency: reading it is chance.
    wrong_band = get_task("lf" if task == "hf" else "hf")
    assert (oracle_predict(wrong_band, images) == labels).float().mean() < 0.35


def test_probe_models_are_registered_with_timm():
    for name, first in (("probe_cnn", "stem"), ("probe_vit", "blocks.0")):
        model = timm.create_model(name)
        cfg = model.pretrained_cfg
        assert cfg["input_size"] == (3, 32, 32) and cfg["crop_pct"] == 1.0 and cfg["num_classes"] == 4, name
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4), name
        assert model.probe_points[0].name == first, name
        model.get_submodule(model.gradcam_target.name)
        for point in model.probe_points:
            model.get_submodule(point.name)
        feats = timm.create_model(name, features_only=True)(torch.zeros(1, 3, 32, 32))
        assert len(feats) == 4, name


def test_checkpoints_are_shipped():
    assert {"probe_cnn_hf", "probe_cnn_lf"} <= set(SHIPPED)
    for stem in SHIPPED:
        assert (CHECKPOINT_DIR / f"{stem}.safetensors").stat().st_size < 1 << 20, stem


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_accuracy_matches_recipe(stem, shipped):
    recipe = read_recipe(CHECKPOINT_DIR / f"{stem}.safetensors")
    assert f"{recipe['model']}.{recipe['task']}" == _tag(stem)
    accuracy = evaluate(shipped[stem], recipe["task"], recipe["test_size"])
    assert abs(accuracy - recipe["test_accuracy"]) <= 0.01, (stem, accuracy, recipe["test_accuracy"])
    assert accuracy > 0.95, stem


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_models_use_only_the_label_band(stem, shipped):
    """Band-stop of the label band drops a trained model to chance; of the distractor band, not at all."""
    task = stem.rsplit("_", 1)[1]
    t = get_task(task)
    images, labels = make_split(task, "test", N_PROBE)
    model = shipped[stem]
    assert _accuracy(model, band_stop(images, t.label_band), labels) < 0.35, stem
    assert _accuracy(model, band_stop(images, t.distractor_band), labels) > 0.95, stem


@pytest.mark.parametrize("stem", [s for s in SHIPPED if s.startswith("probe_cnn")])
def test_first_layer_filters_move_into_the_label_band(stem, shipped):
    """Label-band over distractor-band power of the stem filters grows by >= 1.5x with training."""
    task = stem.rsplit("_", 1)[1]
    trained, twin = _band_ratio(_stem_power(shipped[stem]), task), _band_ratio(_stem_power(_twin(stem)), task)
    assert trained > 1.5 * twin, (stem, trained, twin)


# Minimum gain, over the random twin, of label- over distractor-band power in the input gradients. A
# random 4x4-patch ViT is already nearly blind to the low band (its twin's high/low ratio is ~27), so
# the HF ViT can only keep that bias; its HF-vs-LF contrast is checked against the LF ViT instead.
GRADIENT_GAIN = {"probe_cnn_hf": 3.0, "probe_cnn_lf": 3.0, "probe_vit_hf": 1.0, "probe_vit_lf": 3.0}


@pytest.mark.parametrize("stem", SHIPPED)
def test_input_gradients_concentrate_in_the_label_band(stem, shipped):
    """Training raises the input gradients' label- over distractor-band power above the random twin's."""
    task = stem.rsplit("_", 1)[1]
    trained = _band_ratio(_input_grad_power(shipped[stem], task), task)
    twin = _band_ratio(_input_grad_power(_twin(stem), task), task)
    assert trained > GRADIENT_GAIN[stem] * twin, (stem, trained, twin)


@pytest.mark.parametrize("arch", PAIRS)
def test_hf_and_lf_models_are_told_apart_by_their_input_gradients(arch, shipped):
    """High- over low-band power of the input gradients: the HF-trained model's is 10x the LF-trained one's."""
    hf = _band_ratio(_input_grad_power(shipped[f"{arch}_hf"], "hf"), "hf")
    lf = _band_ratio(_input_grad_power(shipped[f"{arch}_lf"], "hf"), "hf")
    assert hf > 10 * lf, (arch, hf, lf)


def test_hf_and_lf_cnns_are_told_apart_by_their_stem_filters(shipped):
    hf = _band_ratio(_stem_power(shipped["probe_cnn_hf"]), "hf")
    lf = _band_ratio(_stem_power(shipped["probe_cnn_lf"]), "hf")
    assert hf > 2 * lf, (hf, lf)


def test_training_is_reproducible_and_restores_the_rng(tmp_path: Path):
    tiny = dict(epochs=1, train_size=128, batch_size=64, test_size=100)
    rng = torch.get_rng_state()
    first, recipe = train("hf", "cnn", seed=1, **tiny)
    assert torch.equal(torch.get_rng_state(), rng)
    second, _ = train("hf", "cnn", seed=1, **tiny)
    other, _ = train("hf", "cnn", seed=2, **tiny)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.conv.weight"], c["stem.conv.weight"])

    path = tmp_path / "tiny.pth"
    save_checkpoint(first, recipe, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["recipe"] == recipe == read_recipe(path)
    assert recipe["epochs"] == 1 and recipe["seed"] == 1 and 0 <= recipe["test_accuracy"] <= 1
    assert all(torch.equal(loaded["model"][k], a[k]) for k in a)
