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
# # Effective receptive field (RepLKNet, CVPR 2022)
#
# `erf` back-propagates the centre of a probe point's feature map to the input and averages the gradient
# magnitude over images. The area ratio at threshold t is the smallest centred square holding t of the
# (log-scaled) contribution, as a share of the image. A CNN's ERF is limited by its kernels and strides;
# a ViT's attention can reach the whole image from the first block.

# %%
# %matplotlib inline
import freqlens.api as fl
from freqlens.probes.models import CHECKPOINT_DIR
from freqlens.reports.erf import erf_heatmap_figure

cnn = fl.erf("probe_cnn", ckpt=CHECKPOINT_DIR / "probe_cnn_hf.safetensors", limit=2, input_size=32, progress=False)
vit = fl.erf("probe_vit", ckpt=CHECKPOINT_DIR / "probe_vit_hf.safetensors", limit=2, input_size=32, progress=False)

# %% [markdown]
# ## Area ratios (None: the threshold is not reached inside the image)

# %%
for label, report in (("probe_cnn_hf", cnn), ("probe_vit_hf", vit)):
    for point in report.result["points"]:
        print(label, point["name"], {t: None if r is None else round(r, 3) for t, r in point["area_ratios"].items()})

# %% [markdown]
# ## Earlier probe points have smaller receptive fields
# `probes` picks other points (glob patterns over the probe-point names).

# %%
stages = fl.erf("probe_cnn", ckpt=CHECKPOINT_DIR / "probe_cnn_hf.safetensors", probes=["stem", "stages.*"], limit=2,
                input_size=32, progress=False)
{p["name"]: round(p["area_ratios"][0.5], 3) for p in stages.result["points"]}

# %%
erf_heatmap_figure(cnn.result["points"][0], "probe_cnn_hf")

# %% [markdown]
# `scripts/figures/erf_grid.py` draws the multi-model grid for a paper.
