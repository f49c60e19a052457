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
# # Rank collapse (Dong et al., ICML 2021) and rotation consistency
#
# **Rank collapse**: pure attention drives token features towards rank one with depth. `rank` reports,
# per probe point, the relative residual ‖X − 1xᵀ‖ / ‖X‖ (composite ℓ1,∞ and Frobenius norms) and the
# effective rank of the tokens (spatial positions) x channels matrix.
#
# **Rotation consistency**: `rotation` feeds each image rotated by 90°, 180° and 270° (exact rotations, no
# interpolation) and reports output agreement with the unrotated prediction, logit cosine and KL, and per
# probe point the invariance of pooled features and the equivariance of the feature maps.

# %%
# %matplotlib inline
import freqlens.api as fl
from freqlens.probes.models import CHECKPOINT_DIR
from freqlens.reports.rank_collapse import rank_depth_figure
from freqlens.reports.rotation_consistency import rotation_bars_figure

vit_ckpt = CHECKPOINT_DIR / "probe_vit_hf.safetensors"
rank = fl.rank("probe_vit", ckpt=vit_ckpt, limit=4, progress=False)
[(p["name"], round(p["residual_fro"], 3), round(p["effective_rank"], 2)) for p in rank.result["points"]]

# %%
rank_depth_figure(rank.result, [p.kind for p in rank.points], "probe_vit_hf")

# %% [markdown]
# ## Rotation: a CNN trained on oriented textures is not rotation invariant
# The probe tasks' classes are orientations, so a 90° rotation should change the prediction for many images.

# %%
rot = fl.rotation("probe_cnn", ckpt=CHECKPOINT_DIR / "probe_cnn_hf.safetensors", limit=4, progress=False)
{q: [round(v, 3) for v in rot.result["outputs"][q]] for q in ("agreement", "logit_cosine")}

# %%
[(p["name"], [round(v, 3) for v in p["equivariance"]]) for p in rot.result["points"]]

# %%
rotation_bars_figure(rot.result, "probe_cnn_hf")
