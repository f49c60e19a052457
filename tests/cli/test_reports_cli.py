"""`freqlens gradcam|response|report|compare` end to end on tiny timm models (64 px, 2 images), their bad
inputs (message, exit code, no output left) and the report page rendered offline in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import freqlens.api
from cli_checks import invoke, no_output_left
from freqlens.io.images import sample_images_dir

CHROMIUM = Path("/usr/bin/chromium")
FAST = ["--quiet", "--device", os.environ.get("FREQLENS_TEST_DEVICE", "cpu")]
HERE = Path(__file__).resolve()


def tiny_resnet() -> torch.nn.Module:
    """timm's test_resnet, 5 classes, evaluated at 64 px (the factory the CLI builds from this file)."""
    return timm.create_model("test_resnet", num_classes=5, pretrained_cfg_overlay={"input_size": (3, 64, 64)})


def tiny_vit() -> torch.nn.Module:
    """timm's test_vit (class token, 16 px patches) at 64 px: a 4x4 token grid."""
    return timm.create_model("test_vit", num_classes=5, img_size=64, pretrained_cfg_overlay={"input_size": (3, 64, 64)})


RESNET, VIT = f"{HERE}:tiny_resnet", f"{HERE}:tiny_vit"


def _figure_stems(folder: Path) -> set[Path]:
    """Every figure written as PDF + SVG + PNG anywhere under ``folder``."""
    return {p.with_suffix("") for p in folder.rglob("*.png") if p.with_suffix(".svg").exists() and p.with_suffix(".pdf").exists()}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Two sample photographs in a flat folder."""
    folder = tmp_path_factory.mktemp("imgs")
    for name in ("rocket.jpg", "chelsea.jpg"):
        shutil.copy(sample_images_dir() / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The same two photographs as a labelled ImageFolder tree (classes 0 and 1)."""
    root = tmp_path_factory.mktemp("tree")
    for index, name in enumerate(("rocket.jpg", "chelsea.jpg")):
        (root / f"c{index}").mkdir()
        shutil.copy(sample_images_dir() / name, root / f"c{index}" / name)
    return root


@pytest.fixture(scope="module")
def resnet_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny_resnet.pth"
    torch.manual_seed(0)
    torch.save({"model": tiny_resnet().state_dict()}, path)
    return path


# -- gradcam -----------------------------------------------------------------------------------------
def test_gradcam_writes_overlays_maps_and_sanity_check(tmp_path, images, resnet_ckpt):
    out = tmp_path / "cam"
    result = invoke("gradcam", "--model", RESNET, "--ckpt", str(resnet_ckpt), "--images", str(images), "--sanity",
                     "--classes", "3", "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "image\tclass\traw_max\traw_mean"
    files = {str(p.relative_to(out)) for p in out.rglob("*")}
    for stem in ("gradcam_overlays", "gradcam_sanity", "gradcam_sanity_maps"):
        assert {f"{stem}.pdf", f"{stem}.svg", f"{stem}.png"} <= files
    assert {"overlays/0000_chelsea.png", "overlays/0000_chelsea.pdf", "overlays/0001_rocket.png",
            "overlays/0001_rocket.pdf", "gradcam.csv", "gradcam_sanity.csv", "gradcam_maps.npz", "results.json"} <= files
    payload = json.loads((out / "results.json").read_text())
    assert payload["measure"] == "gradcam" and payload["target"]["name"] == "layer4"
    assert payload["provenance"]["model"]["checkpoint"]["source_key"] == "model"
    assert payload["provenance"]["measure"]["classes"] == [3] and payload["provenance"]["images"]["count"] == 2
    assert [r["class"] for r in payload["images"]] == [3, 3]
    steps = payload["sanity"]["steps"]
    assert steps[0] == "fc" and len(payload["sanity"]["spearman"]) == len(steps)
    assert len((out / "gradcam_sanity.csv").read_text().splitlines()) == 1 + 2 * len(steps)
    with np.load(out / "gradcam_maps.npz") as maps:
        assert maps["maps"].shape == maps["raw"].shape == (2, 64, 64)
        assert maps["sanity_spearman"].shape == (len(steps), 2)
        assert 0 <= maps["maps"].min() and maps["maps"].max() <= 1


def test_gradcam_on_a_class_token_vit_uses_the_last_norm1(tmp_path, images):
    out = tmp_path / "cam"
    result = invoke("gradcam", "--model", VIT, "--images", str(images), "--method", "gradcam++", "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "results.json").read_text())
    assert payload["target"] == {"name": "blocks.5.norm1", "layout": "NLC", "kind": "norm", "reduction": 16,
                                 "prefix_tokens": 1}
    assert payload["method"] == "gradcam++" and payload["sanity"] is None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--layer", "layer44"], 2, "did you mean layer4"),
        (["--classes", "7"], 2, "class index 7 is out of range: the model has 5 classes"),
        (["--classes", "1,2,3"], 2, "got 3 class indices for 2 images"),
        (["--classes", "one"], 2, "expected integers"),
        (["--method", "gradcam3"], 2, "is not a Grad-CAM method"),
        (["--images", "EMPTY"], 1, "holds no images"),
    ],
)
def test_gradcam_bad_inputs_fail_clearly(tmp_path, images, args, code, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(empty) if a == "EMPTY" else a for a in args]
    out = tmp_path / "out"
    result = invoke("gradcam", "--model", RESNET, "--images", str(images), *args, "--out", str(out), *FAST)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert no_output_left(out)


# -- response ------------------------------------------------------------------------------------------
def test_response_with_labels_writes_heat_map_transfer_and_band_curves(tmp_path, tree):
    out = tmp_path / "resp"
    result = invoke("response", "--model", RESNET, "--images", str(tree), "--max-freq", "2", "--transfer-max-freq", "1",
                     "--probe", "layer[14]", "--cutoff", "0.25", "--cutoff", "1.0", "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert "fourier\tmean_error_rate" in result.stdout
    files = {p.name for p in out.iterdir()}
    for stem in ("response_fourier_heatmap", "response_transfer_maps", "response_transfer_radial", "response_band_limited"):
        assert {f"{stem}.pdf", f"{stem}.svg", f"{stem}.png"} <= files
    payload = json.loads((out / "results.json").read_text())
    fourier = payload["fourier"]
    assert fourier["labelled"] and np.array(fourier["error_rate"]).shape == (5, 5)
    assert fourier["settings"]["image_size"] == [64, 64] and fourier["settings"]["max_freq"] == 2
    assert list(payload["transfer"]["gain"]) == ["layer1", "layer4"]
    assert np.array(payload["transfer"]["gain"]["layer1"]).shape == (3, 3)
    assert payload["band_limited"]["cutoffs"] == [0.25, 1.0] and payload["band_limited"]["low_accuracy"] is not None
    assert payload["provenance"]["measure"]["labels"] == "folder index"
    rows = (out / "response_fourier.csv").read_text().splitlines()
    assert rows[0].startswith("freq_y,freq_x,cycles_per_px_y") and len(rows) == 1 + 25


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--cutoff", "2.0"], 2, "cutoffs must be increasing"),
        (["--preset", "yin2020"], 2, "unknown fourier-sensitivity preset"),
        (["--eps", "-1"], 2, "eps must be > 0"),
        (["--probe", "nothing*"], 1, "matches none"),
    ],
)
def test_response_bad_inputs_fail_clearly(tmp_path, images, args, code, message):
    out = tmp_path / "out"
    result = invoke("response", "--model", RESNET, "--images", str(images), "--max-freq", "1", *args, "--out", str(out),
                     *FAST)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert no_output_left(out)


@pytest.mark.parametrize("command", ["response", "rotation", "interactions"])
def test_labelled_measures_refuse_a_tree_with_more_classes_than_the_model(tmp_path, command):
    root = tmp_path / "tree"
    for index in range(6):
        (root / f"c{index}").mkdir(parents=True)
        Image.new("RGB", (32, 32), (40 * index, 0, 0)).save(root / f"c{index}" / "x.png")
    out = tmp_path / "out"
    result = invoke(command, "--model", RESNET, "--images", str(root), "--out", str(out), *FAST)
    assert result.exit_code == 1 and "6 class folders, the model 5 classes" in result.output
    assert no_output_left(out)


# -- report and compare ----------------------------------------------------------------------------------
def _assert_self_contained(page: str, figures: int) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert len(re.findall(r"<img\b", page)) + len(re.findall(r"<svg\b", page)) == figures
    assert len(re.findall(r'<img\b[^>]*src="data:image/png;base64,', page)) == len(re.findall(r"<img\b", page))


def _render(page: Path, tmp_path: Path) -> None:
    """Render ``page`` in headless Chromium with every host unresolvable: it must draw, and load nothing."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install -y chromium); the page was checked statically")
    shot = tmp_path / "shot.png"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
               page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    log = done.stdout + done.stderr
    assert shot.exists(), log
    assert "Failed to load resource" not in log and "net::ERR" not in log, log
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280) and pixels.std() > 10, "the screenshot is blank"


def test_report_writes_one_offline_page_with_every_figure(tmp_path, images, resnet_ckpt):
    out = tmp_path / "report"
    result = invoke("report", "--model", RESNET, "--ckpt", str(resnet_ckpt), "--images", str(images),
                     "--measures", "spectrum,response,gradcam", "--max-freq", "1", "--transfer-max-freq", "1",
                     "--probe", "layer4", "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", "results.json", "spectrum", "response", "gradcam"}
    payload = json.loads((out / "results.json").read_text())
    assert payload["provenance"]["measure"]["measures"] == ["spectrum", "response", "gradcam"]
    assert set(payload["results"]) == {"spectrum", "response", "gradcam"}
    assert len(payload["provenance"]["model"]["checkpoint"]["sha256"]) == 64
    assert (out / "spectrum" / "spectrum_summary.csv").exists() and (out / "gradcam" / "gradcam.csv").exists()
    page = (out / "report.html").read_text()
    stems = _figure_stems(out)
    assert len(stems) == 3 + 4 + 1
    _assert_self_contained(page, len(stems))
    assert "Provenance" in page and "tiny_resnet" in page
    _render(out / "report.html", tmp_path)


def test_compare_puts_models_side_by_side(tmp_path, images, resnet_ckpt):
    out = tmp_path / "cmp"
    result = invoke("compare", f"{RESNET}={resnet_ckpt}", VIT, "--images", str(images), "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    labels = sorted(p.name for p in (out / "models").iterdir())
    assert labels == ["tiny_resnet", "tiny_vit"]  # factory names label file.py:factory models
    assert {p.name for p in (out / "models" / "tiny_vit").iterdir()} == {"spectrum", "gradcam"}
    for stem in ("compare_spectrum_delta_vs_depth", "compare_gradcam"):
        assert {f"{stem}.pdf", f"{stem}.svg", f"{stem}.png"} <= {p.name for p in out.iterdir()}
    models = {line.split("\t")[0] for line in result.stdout.splitlines()[1:]}
    assert models == set(labels)
    page = (out / "report.html").read_text()
    _assert_self_contained(page, len(_figure_stems(out)))
    assert json.loads((out / "results.json").read_text())["measure"] == "compare"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--model", RESNET, "--measures", "spectrum,fft"], "unknown measure 'fft'"),
        (["report", "--model", RESNET, "--measures", "gradcam", "--layer", "fc2"], "did you mean fc"),
        (["compare", RESNET], "at least two models"),
        (["compare", RESNET, "=x.pth"], "has no model name"),
    ],
)
def test_report_and_compare_usage_errors(tmp_path, images, args, message):
    out = tmp_path / "out"
    result = invoke(*args, "--images", str(images), "--out", str(out), *FAST)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert no_output_left(out)


def test_python_api_report_displays_in_jupyter(images):
    shown = freqlens.api.report(tiny_resnet(), str(images), measures=["gradcam"], device=FAST[-1], progress=False,
                                options={"gradcam": {"classes": [0]}})
    assert shown.path is None
    fragment = shown._repr_html_()
    assert fragment.startswith('<div class="freqlens-report">') and len(re.findall(r"<img\b", fragment)) == 1
    assert shown.html.startswith("<!DOCTYPE html>") and shown.results["results"]["gradcam"]["images"][0]["class"] == 0
    with pytest.raises(freqlens.UsageError, match="gradcam has no option 'probes'"):
        freqlens.api.report(tiny_resnet(), str(images), measures=["gradcam"], options={"gradcam": {"probes": ["x"]}})
