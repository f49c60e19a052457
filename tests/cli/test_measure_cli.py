"""`freqlens erf|interactions|rank|rotation` end to end on a tiny model, option mapping and usage errors."""
from __future__ import annotations

import json

import pytest

import freqlens.api
from cli_checks import invoke, no_output_left

FAST = ["--model", "test_resnet", "--limit", "2", "--quiet", "--device", "cpu"]

CASES = {
    "erf": (["--input-size", "32", "--batch-size", "2"], {"erf_area_ratios.csv", "erf_maps.npz", "erf_heatmap_00.svg"}),
    "interactions": (["--grid", "2", "--pairs", "1", "--contexts", "1"], {"interactions.csv", "interaction_strength.pdf"}),
    "rank": (["--probe", "layer*"], {"rank_collapse.csv", "rank_collapse.png"}),
    "rotation": (["--probe", "layer3", "--probe", "layer4"], {"rotation_outputs.csv", "rotation_points.csv", "rotation_points.png"}),
}


@pytest.mark.parametrize("command", list(CASES))
def test_command_writes_results_tables_and_figures(tmp_path, command):
    extra, expected = CASES[command]
    out = tmp_path / "run"
    result = invoke(command, *FAST, *extra, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert expected | {"results.json"} <= {p.name for p in out.iterdir()}
    payload = json.loads((out / "results.json").read_text())
    assert payload["measure"] == command
    assert payload["provenance"]["measure"]["name"] == command
    assert payload["provenance"]["images"]["count"] == 2


def test_options_reach_the_api(monkeypatch, tmp_path):
    seen = {}

    def fake(model, images, **kwargs):
        seen.update(model=model, images=images, **kwargs)
        raise freqlens.FreqlensError("stop here")

    monkeypatch.setattr(freqlens.api, "rotation", fake)
    result = invoke("rotation", "-m", "x", "-o", str(tmp_path / "o"), "--angle", "45", "--angle", "90",
                    "--interpolation", "bilinear", "--preset", "rot90")
    assert result.exit_code == 1 and "stop here" in result.stderr
    assert seen["angles"] == [45.0, 90.0] and seen["interpolation"] == "bilinear" and seen["preset"] == "rot90"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["interactions", "--preset", "nope"], "unknown interactions preset"),
        (["rotation", "--angle", "45"], "multiples of 90"),
        (["interactions", "--target", "both"], "--target"),
        (["interactions", "--target", "label"], "needs labelled images"),  # the bundled samples have no labels
        (["interactions", "--grid", "1000"], "fewer pixels per side than players"),
        (["rotation", "--angle", "nan", "--interpolation", "bilinear"], "finite degrees"),
        (["erf", "--input-size", "5000000"], "inputs alone takes"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    result = invoke(*args, *FAST, "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert no_output_left(tmp_path / "o")


def test_available_host_memory_is_linux_memavailable(monkeypatch, tmp_path):
    """MemAvailable, not MemFree: the page cache the OS would reclaim counts (the input-size check above)."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemFree:         100000 kB\nMemAvailable:   6000000 kB\n")
    real_open = open
    monkeypatch.setattr(freqlens.api, "open", lambda path, *a, **k: real_open(meminfo if path == "/proc/meminfo" else path, *a, **k),
                        raising=False)
    assert freqlens.api._available_host_memory() == 6000000 * 1024


def test_a_model_that_cannot_take_its_input_size_fails_before_any_work(tmp_path):
    factory = tmp_path / "mlp.py"
    factory.write_text("import torch\n\ndef mlp():\n"
                       "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))\n")
    out = tmp_path / "o"
    result = invoke("rank", "--model", f"{factory}:mlp", *FAST[2:], "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "fails on a 1x3x224x224 input" in result.stderr and "pretrained_cfg" in result.stderr
    assert "Traceback" not in result.output and no_output_left(out)


def test_erf_at_an_input_size_the_model_cannot_take_fails_before_any_work(tmp_path):
    out = tmp_path / "o"
    result = invoke("erf", "--model", "deit_tiny_patch16_224", "--input-size", "64", *FAST[2:], "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "fails on a 1x3x64x64 input, its own being 224x224" in result.stderr and "--input-size" in result.stderr
    assert "Traceback" not in result.output and no_output_left(out)
