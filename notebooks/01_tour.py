# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tour of freqlens
#
# Load a model with its checkpoint, look at its probe points, attach the lens by hand, then run every
# analysis of the Python API once and read its result. Everything runs on the shipped probe models
# (`probe_cnn`, `probe_vit`: 32x32 inputs, 4 classes, trained on synthetic tasks whose label lives in a
# known frequency band: `hf` = high, `lf` = low) and the bundled sample photographs, in seconds on a CPU.

# %%
import torch

import freqlens.api as fl
from freqlens.io.images import sample_images_dir
from freqlens.lens import Lens
from freqlens.probes.models import CHECKPOINT_DIR

sorted(p.name for p in CHECKPOINT_DIR.glob("*.safetensors")), sorted(p.name for p in sample_images_dir().glob("*.jpg"))

# %% [markdown]
# ## Load a model and its checkpoint
# `load_model` builds a timm registry name (the zoo and the probe models register on `import freqlens`)
# and loads the checkpoint strictly. Its provenance records where the weights came from.

# %%
loaded = fl.load_model("probe_cnn", CHECKPOINT_DIR / "probe_cnn_hf.safetensors")
loaded.provenance()["weights"], loaded.provenance()["num_params"], loaded.data_config()["input_size"]

# %% [markdown]
# ## Probe points
# Each model declares where the lens may look: a module path, its output layout, and how many input
# pixels one output pixel covers.

# %%
points = fl.probe_points(loaded.model)
[(p.name, p.layout, p.reduction, p.kind) for p in points]

# %% [markdown]
# ## The lens by hand
# `Lens(model, points, observer)` hooks every probe point and calls `observer(point, features)` with the
# features in NCHW, whatever the module's own layout; the hooks go when the block ends.

# %%
shapes = {}
x = torch.randn(2, 3, 32, 32)
with Lens(loaded.model, points, lambda point, feats: shapes.__setitem__(point.name, tuple(feats.shape))) as lens, \
        torch.no_grad():
    logits = lens.model(x)
shapes, tuple(logits.shape)

# %% [markdown]
# ## Every analysis, tiny settings
# Each call takes a model (name, `nn.Module` or loaded model), images (default: the bundled samples) and
# `limit`; `out=` would also write results.json, CSVs and figures.

# %%
spec = fl.spectrum(loaded, limit=2, progress=False)
{p.name: round(p.delta_log_amplitude, 2) for p in spec.result.points}

# %%
erf = fl.erf(loaded, limit=2, input_size=32, progress=False)
{p["name"]: p["area_ratios"] for p in erf.result["points"]}

# %%
inter = fl.interactions(loaded, limit=1, grid=4, pairs=2, contexts=2, progress=False)
[round(s, 2) for s in inter.result["strength"]]

# %%
rank = fl.rank(loaded, limit=2, progress=False)
{p["name"]: round(p["effective_rank"], 2) for p in rank.result["points"]}

# %%
rot = fl.rotation(loaded, limit=2, progress=False)
dict(zip(rot.result["angles"], rot.result["outputs"]["agreement"]))

# %% [markdown]
# ## Writing results
# Every report writes its folder atomically: results.json (with provenance), CSVs and PDF/SVG/PNG figures.

# %%
import tempfile
from pathlib import Path

with tempfile.TemporaryDirectory() as tmp:
    written = spec.write(Path(tmp) / "spectrum")
    files = sorted(p.name for p in written.iterdir())
files
