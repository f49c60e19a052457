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
# # Spectrum: how much high frequency survives each layer (Park & Kim, ICLR 2022)
#
# `spectrum` Fourier-transforms every probe point's feature maps and averages the log amplitude over
# channels and images. The **Δ log amplitude** of a point is the log amplitude at the highest diagonal
# frequency minus that at zero frequency: higher means more high-frequency content. We compare the probe
# CNN trained on the high-frequency task (`hf`), the same CNN trained on the low-frequency task (`lf`)
# and the probe ViT (`hf`).

# %%
# %matplotlib inline
import freqlens.api as fl
from freqlens.probes.models import CHECKPOINT_DIR
from freqlens.reports.spectrum import delta_vs_depth_figure, relative_log_amplitude_figure

runs = {
    "probe_cnn_hf": ("probe_cnn", "probe_cnn_hf.safetensors"),
    "probe_cnn_lf": ("probe_cnn", "probe_cnn_lf.safetensors"),
    "probe_vit_hf": ("probe_vit", "probe_vit_hf.safetensors"),
}
reports = {label: fl.spectrum(name, ckpt=CHECKPOINT_DIR / ckpt, limit=4, progress=False)
           for label, (name, ckpt) in runs.items()}

# %% [markdown]
# ## Δ log amplitude and high-frequency power share per probe point

# %%
for label, report in reports.items():
    print(label)
    for point, depth in zip(report.result.points, report.result.normalized_depth()):
        print(f"  {point.name:10s} depth {depth:.2f}  Δ log amp {point.delta_log_amplitude:6.2f}  "
              f"HF share {point.hf_fraction:.3f}")

# %% [markdown]
# ## The paper's two views: relative log amplitude along the diagonal, coloured by depth, and Δ vs depth

# %%
report = reports["probe_cnn_hf"]
relative_log_amplitude_figure(report.result, "probe_cnn_hf")

# %%
delta_vs_depth_figure(report.result, [p.kind for p in report.points], "probe_cnn_hf")

# %% [markdown]
# `scripts/figures/delta_log_amplitude.py` draws the multi-model version of the second plot for a paper.
