"""The CLI under ``torchrun`` (two CPU processes, gloo) gives what one process gives, and says it once."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each case starts three interpreters that import torch and freqlens

COMMANDS = {  # the lens loop (runner.stream) and the loop where the measure drives the model (runner.feed)
    "spectrum": ["--batch-size", "2"],
    "interactions": ["--grid", "4", "--pairs", "2", "--contexts", "2", "--batch-size", "64"],
}


def _freqlens(launcher: list[str], command: str, out, *extra: str) -> subprocess.CompletedProcess:
    args = [*launcher, "-m", "freqlens", command, "--model", "probe_cnn", "--device", "cpu", "--limit", "5", "-q",
            "--out", str(out), *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def _assert_close(got, want, where: str = "") -> None:
    if isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert got == want, where


@pytest.mark.parametrize("command", list(COMMANDS))
def test_two_processes_give_the_single_process_result(tmp_path, command):
    one = _freqlens([sys.executable], command, tmp_path / "one", *COMMANDS[command])
    two = _freqlens([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
                    command, tmp_path / "two", *COMMANDS[command])
    results = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two")]
    provenance = [r["provenance"] for r in results]
    assert provenance[1]["images"] == provenance[0]["images"]
    assert [p["environment"]["processes"] for p in provenance] == [1, 2]
    assert provenance[0]["command"][:2] == ["freqlens", command]
    _assert_close(*[{k: v for k, v in r.items() if k != "provenance"} for r in reversed(results)])
    assert two.stdout == one.stdout  # the table once, from the first process
    assert two.stderr.count("RANDOM") == one.stderr.count("RANDOM") == 1
    assert not any(p.name.endswith(".progress") for p in tmp_path.iterdir())  # interactions' per-image saves
