"""`freqlens spectrum` end to end on a tiny model, and every bad input: message, exit code, no output left."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

import freqlens.api
from cli_checks import invoke, no_output_left
from freqlens.io.images import sample_images_dir

FAST = ["--limit", "2", "--batch-size", "2", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def resnet_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "test_resnet.pth"
    torch.manual_seed(0)
    torch.save({"model": timm.create_model("test_resnet", num_classes=5).state_dict(), "epoch": 1}, path)
    return path


def test_spectrum_writes_results_tables_and_figures(tmp_path, resnet_ckpt):
    out = tmp_path / "run"
    result = invoke("spectrum", "--model", "test_resnet", "--ckpt", str(resnet_ckpt), "--out", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("point\tlayout")
    files = {p.name for p in out.iterdir()}
    for stem in ("spectrum_relative_log_amplitude", "spectrum_delta_vs_depth", "spectrum_hf_fraction"):
        assert {f"{stem}.pdf", f"{stem}.svg", f"{stem}.png"} <= files
    assert {"results.json", "spectrum_summary.csv", "spectrum_curves.csv", "spectrum_radial.csv", "spectrum_maps.npz"} <= files
    payload = json.loads((out / "results.json").read_text())
    prov = payload["provenance"]
    assert prov["model"]["name"] == "test_resnet" and prov["model"]["checkpoint"]["source_key"] == "model"
    assert len(prov["model"]["checkpoint"]["sha256"]) == 64
    assert prov["images"]["count"] == 2 and len(prov["images"]["list_sha256"]) == 64
    assert prov["preprocessing"]["input_size"] == [3, 160, 160]
    assert prov["measure"]["preset"] == "parkkim2022" and "split-bfloat16" in prov["measure"]["dft"]
    assert {"torch", "timm", "freqlens", "device", "dtype"} <= set(prov["environment"])
    assert [p["name"] for p in payload["points"]][:2] == ["maxpool", "layer1"]


def test_no_checkpoint_says_weights_are_random(tmp_path):
    result = invoke("spectrum", "--model", "test_vit", "--out", str(tmp_path / "r"), *FAST)
    assert result.exit_code == 0, result.output
    assert "RANDOM" in result.stderr
    assert json.loads((tmp_path / "r" / "results.json").read_text())["provenance"]["model"]["weights"].startswith("random")


def test_probe_pattern_selects_points(tmp_path):
    result = invoke("spectrum", "--model", "test_vit", "--probe", "blocks.1", "--out", str(tmp_path / "r"), *FAST)
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()[1:]] == ["blocks.1"]


def _bad_image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "ok.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--model", "resnet_18"], 2, "did you mean resnet18"),
        (["--model", "test_resnet", "--ckpt", "missing.pth"], 1, "does not exist"),
        (["--model", "test_resnet", "--dtype", "float8"], 2, "--dtype 'float8'"),
        (["--model", "test_resnet", "--device", "tpu"], 2, "--device"),
        (["--model", "test_resnet", "--weights", "best"], 2, "weights must be"),
        (["--model", "test_resnet", "--preset", "nope"], 2, "unknown spectrum preset"),
        (["--model", "test_resnet", "--batch-size", "0"], 2, "batch-size"),
        (["--model", "test_resnet", "--images", "no/such/dir"], 2, "is not a folder"),
        (["--model", "test_resnet", "--probe", "nothing*"], 1, "matches none"),
    ],
)
def test_bad_options_fail_clearly(tmp_path, args, code, message):
    out = tmp_path / "out"
    result = invoke("spectrum", *args, "--out", str(out), "--quiet", "--limit", "1")
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert no_output_left(out)


def test_bad_files_fail_clearly(tmp_path, resnet_ckpt):
    out = tmp_path / "out"
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(resnet_ckpt.read_bytes()[:1000])
    other = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit").state_dict(), other)
    evil = tmp_path / "evil.pth"
    torch.save({"model": {}, "x": _Evil()}, evil)
    empty_dir = tmp_path / "none"
    empty_dir.mkdir()
    cases = [
        (["--ckpt", str(empty)], "is empty"),
        (["--ckpt", str(corrupt)], "not a readable"),
        (["--ckpt", str(other)], "unexpected in checkpoint"),
        (["--ckpt", str(evil)], "--trust-checkpoint"),
        (["--images", str(_bad_image_dir(tmp_path))], "broken.jpg"),
        (["--images", str(empty_dir)], "holds no images"),
    ]
    for args, message in cases:
        result = invoke("spectrum", "--model", "test_resnet", *args, "--out", str(out), "--quiet")
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert no_output_left(out)


class _Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke("spectrum", "--model", "test_vit", "--out", str(out), *FAST)
    assert result.exit_code == 2 and "already holds results" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    result = invoke("spectrum", "--model", "test_vit", "--out", str(out), "--overwrite", *FAST)
    assert result.exit_code == 0 and (out / "results.json").exists() and not (out / "keep.txt").exists()


def test_interrupted_run_leaves_no_output(tmp_path, monkeypatch):
    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(freqlens.api, "write_spectrum_outputs", interrupt, raising=False)
    import freqlens.reports.spectrum as spectrum_report

    monkeypatch.setattr(spectrum_report, "write_spectrum_outputs", interrupt)
    out = tmp_path / "out"
    result = invoke("spectrum", "--model", "test_vit", "--out", str(out), *FAST)
    assert result.exit_code == 130 and "no output was written" in result.output
    assert no_output_left(out)


def test_models_lists_timm_and_zoo_names():
    result = invoke("models", "test_vi*")
    assert result.exit_code == 0
    assert "test_vit\ttimm" in result.stdout.splitlines()
    word = invoke("models", "spanetv2_s18", "--zoo")  # a plain word matches anywhere in the name
    assert word.exit_code == 0 and "spanetv2_s18_pure\tzoo" in word.stdout.splitlines()
    none = invoke("models", "no_such_family")
    assert none.exit_code == 1 and "no model name matches" in none.stderr and not none.stdout


def test_sample_images_are_shipped():
    assert len([p for p in sample_images_dir().iterdir() if p.suffix == ".jpg"]) == 8
