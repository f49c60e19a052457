"""A regular wheel holds the same import layout as the editable install: freqlens, freqlens.models, freqlens.cli."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = """
import pathlib, sys
import freqlens, freqlens.models, freqlens.cli, freqlens.lens, freqlens.io.images
root = pathlib.Path(sys.argv[1]).resolve()
for module in (freqlens, freqlens.models, freqlens.cli):
    assert pathlib.Path(module.__file__).resolve().is_relative_to(root), module.__file__
assert freqlens.io.images.sample_images_dir().is_dir()
print("ok")
"""


def test_wheel_installs_the_same_packages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("freqlens-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "freqlens/models/__init__.py" in names and "freqlens/cli/__init__.py" in names
    assert any(n.startswith("freqlens/data/samples/") and n.endswith(".jpg") for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    result = subprocess.run([sys.executable, "-c", CHECK, str(site)], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr
