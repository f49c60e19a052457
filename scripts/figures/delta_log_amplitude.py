"""Park & Kim (ICLR 2022, Fig. 2b) style: Δ log amplitude of the feature maps vs normalised depth, one
series per model.

Δ log amplitude is the log amplitude at the highest diagonal frequency minus that at zero frequency,
averaged over channels and images (``freqlens.measures.spectral_energy``); higher means the layer keeps
more high-frequency content. Each probe point is one marker.

Example:
    python scripts/figures/delta_log_amplitude.py --model probe_cnn probe_cnn \\
        --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors freqlens/data/checkpoints/probe_cnn_lf.safetensors \\
        --limit 8 --out docs/figures
"""
from __future__ import annotations

import sys

import _common
import freqlens.api as fl
from freqlens.reports.compare import spectrum_comparison_figure


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    images = _common.image_set(args)
    curves = {}
    for subject in _common.subjects(args):
        result = fl.spectrum(subject.loaded, images, batch_size=args.batch_size, device=args.device, seed=args.seed,
                             progress=False).result
        curves[subject.label] = (result.normalized_depth(), [pt.delta_log_amplitude for pt in result.points])
    fig = spectrum_comparison_figure(curves, title=f"High-frequency content of features ({len(images)} images)",
                                     size=(3.4, 2.6))
    _common.save(fig, args, "delta_log_amplitude")


if __name__ == "__main__":
    main(sys.argv[1:])
