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
# # Grad-CAM and frequency response
#
# Here the inputs are the probe task's own images (`freqlens.probes.generate`): the label of the `hf` task
# lives in a high-frequency band, that of the `lf` task in a low one, so we know what each model *should*
# rely on, and the frequency-response measures can be checked against it.

# %%
# %matplotlib inline
import torch

import freqlens.api as fl
from freqlens.measures.freq_response import BandLimitedAccuracy, FourierSensitivity, TransferFunction
from freqlens.probes import generate, label_band
from freqlens.probes.models import CHECKPOINT_DIR
from freqlens.probes.task import PIXEL_MEAN, PIXEL_STD
from freqlens.reports.gradcam import cascading_randomisation, gradcam

models = {task: fl.load_model("probe_cnn", CHECKPOINT_DIR / f"probe_cnn_{task}.safetensors").model
          for task in ("hf", "lf")}
batches = {}
for task in ("hf", "lf"):
    pixels, labels = generate(task, 16, seed=2**31 + 7)  # a seed from the test range
    batches[task] = ((pixels - PIXEL_MEAN) / PIXEL_STD, labels)
{task: label_band(task) for task in batches}

# %% [markdown]
# ## Band-limited accuracy
# Ideal low-pass / high-pass filters of the input at several cut-offs (1 = Nyquist). The `hf` model keeps
# its accuracy on high-passed images and loses it on low-passed ones; the `lf` model the other way round.

# %%
for task, model in models.items():
    x, y = batches[task]
    band = BandLimitedAccuracy(cutoffs=(0.25, 0.5, 0.75))
    band.update(model, x, y)
    curves = band.compute()
    # at cut-off 0.5 (0.25 cycles/px) the low-pass keeps only the lf band, the high-pass only the hf band
    kept = curves.high_accuracy[1] if task == "hf" else curves.low_accuracy[1]
    lost = curves.low_accuracy[1] if task == "hf" else curves.high_accuracy[1]
    assert kept > 0.9 and lost < 0.6, (task, curves)
    print(task, "clean", curves.clean_accuracy, "| low-pass", [round(v, 2) for v in curves.low_accuracy.tolist()],
          "| high-pass", [round(v, 2) for v in curves.high_accuracy.tolist()])

# %% [markdown]
# ## Fourier heat map (Yin et al., NeurIPS 2019), cropped to |u|, |v| ≤ 3 to stay fast
# Share of predictions that flip when one Fourier basis image is added. The `lf` model is sensitive at low
# frequencies, which the `hf` model ignores.

# %%
for task, model in models.items():
    x, _ = batches[task]
    sens = FourierSensitivity((32, 32), eps=4.0, max_freq=3, pixel_std=(PIXEL_STD,) * 3)
    sens.update(model, x[:4])
    print(task, "mean flip rate at |u|,|v| <= 3:", round(float(sens.compute().flip_rate.mean()), 3))

# %% [markdown]
# ## Transfer function of the stem
# The gain of the stem's linearisation per input frequency: the `hf` stem passes high frequencies.

# %%
points = fl.probe_points(models["hf"])[:1]
for task, model in models.items():
    transfer = TransferFunction(points, (32, 32), max_freq=None, basis_batch=64)
    transfer.update(model, batches[task][0][:1])
    maps = transfer.compute()
    gain, radius = maps.gain["stem"], maps.radius
    ratio = float(gain[radius > 0.6].mean() / gain[radius < 0.4].mean())
    assert (ratio > 1) == (task == "hf"), (task, ratio)
    print(task, "stem gain, high (r > 0.6) / low (r < 0.4):", round(ratio, 2))

# %% [markdown]
# ## Grad-CAM and its sanity check (Adebayo et al., NeurIPS 2018)
# Maps at the model's default Grad-CAM layer; cascading randomisation re-initialises the layers from the
# output side and the map should stop resembling the original (Spearman ρ falls).

# %%
x, y = batches["hf"]
cam = gradcam(models["hf"], x[:4], classes=y[:4])
cam.target.name, tuple(cam.maps.shape), float(cam.maps.min()), float(cam.maps.max())

# %%
check = cascading_randomisation(models["hf"], x[:2], classes=y[:2])
{step: [round(float(r), 2) for r in rho] for step, rho in zip(check.steps, check.spearman)}

# %% [markdown]
# `scripts/figures/gradcam_grid.py` and `scripts/figures/frequency_response.py` draw these for a paper.
