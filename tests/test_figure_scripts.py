"""Every paper-figure script in scripts/figures runs on tiny settings and writes a non-empty PDF, SVG and PNG."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts" / "figures"
CKPT = ROOT / "freqlens" / "data" / "checkpoints" / "probe_cnn_hf.safetensors"

# One trained model and one random one: covers the checkpoint and the 'random' path of the paired lists.
MODELS = ["--model", "probe_cnn", "probe_vit", "--ckpt", str(CKPT), "random", "--limit", "1"]
TINY = {
    "delta_log_amplitude": [],
    "erf_grid": ["--input-size", "32"],
    "interaction_curves": ["--grid", "4", "--pairs", "2", "--contexts", "2"],
    "gradcam_grid": ["--target", "default", "blocks.3.norm1"],
    "frequency_response": ["--max-freq", "2", "--cutoffs", "0.5", "1.0"],
}


def test_every_script_is_covered():
    assert sorted(p.stem for p in SCRIPTS.glob("*.py") if not p.stem.startswith("_")) == sorted(TINY)


@pytest.fixture
def scripts(monkeypatch):
    """Import the scripts as a script run would: their own folder first on sys.path."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return lambda name: importlib.import_module(name)


@pytest.mark.parametrize("name", sorted(TINY))
def test_script_writes_pdf_svg_png(name, scripts, tmp_path, capsys):
    scripts(name).main([*MODELS, *TINY[name], "--out", str(tmp_path)])
    for fmt in ("pdf", "svg", "png"):
        path = tmp_path / f"{name}.{fmt}"
        assert path.is_file() and path.stat().st_size > 1000, path
    assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / f"{name}.svg").read_bytes()[:2000]
    assert str(tmp_path / f"{name}.pdf") in capsys.readouterr().out


def test_unpaired_model_and_ckpt_lists_fail(scripts, tmp_path):
    with pytest.raises(SystemExit, match="2 --model values but 1 --ckpt"):
        scripts("delta_log_amplitude").main(["--model", "probe_cnn", "probe_vit", "--ckpt", str(CKPT),
                                             "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())


def test_name_sets_the_file_stem(scripts, tmp_path):
    scripts("delta_log_amplitude").main(["--model", "probe_cnn", "--ckpt", str(CKPT), "--limit", "1",
                                         "--out", str(tmp_path), "--name", "fig2b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig2b.pdf", "fig2b.png", "fig2b.svg"]


def test_script_runs_as_a_command():
    """The documented entry point: ``python scripts/figures/<name>.py --help`` finds its helpers."""
    run = subprocess.run([sys.executable, str(SCRIPTS / "erf_grid.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "--input-size" in run.stdout and "--ckpt" in run.stdout
