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
# # Multi-order interactions (Deng et al., ICLR 2022; MogaNet, ICLR 2024)
#
# The image is cut into `grid` x `grid` players (patches). For a pair of players, the interaction of
# order m is how much their joint presence changes the target class score beyond their separate effects,
# averaged over random contexts of m other players. The strength J(m) over orders m/n shows whether a
# model uses low-order (local), mid-order or high-order (global) cooperation between patches.
# The presets' sampling (14x14 players, 50 pairs x 50 contexts) is shrunk here to run in seconds.

# %%
# %matplotlib inline
import freqlens.api as fl
from freqlens.probes.models import CHECKPOINT_DIR
from freqlens.reports.interaction_order import interaction_curve_figure

tiny = dict(limit=1, grid=4, pairs=4, contexts=4, progress=False)
hf = fl.interactions("probe_cnn", ckpt=CHECKPOINT_DIR / "probe_cnn_hf.safetensors", **tiny)
lf = fl.interactions("probe_cnn", ckpt=CHECKPOINT_DIR / "probe_cnn_lf.safetensors", **tiny)

# %% [markdown]
# ## The result: mean |I(m)| per order, and the normalised strength the paper plots

# %%
for label, report in (("hf", hf), ("lf", lf)):
    r = report.result
    print(label, "target:", report.provenance["measure"]["target"])
    print("  m/n     ", [round(x, 2) for x in r["ratios"]])
    print("  strength", [round(x, 2) for x in r["strength"]])

# %%
interaction_curve_figure(hf.result, "probe_cnn_hf")

# %% [markdown]
# `scripts/figures/interaction_curves.py` overlays several models for a paper.
