"""Figure style shared by every report: print-ready, colour-blind safe, labelled with units."""
from __future__ import annotations

import contextlib
from typing import Iterator

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402

# Okabe & Ito (2008) colour-blind-safe qualitative palette
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
MARKERS = "osD^v<>p"  # one per model or point, so lines stay apart in grey print too
DEPTH_CMAP = "viridis"  # perceptually uniform, readable in grey and by colour-blind readers

STYLE = {
    "pdf.fonttype": 42,  # TrueType: text stays editable in the PDF
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "figure.dpi": 100,
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Apply the house style inside the block only (the caller's rcParams are left alone)."""
    with plt.rc_context(STYLE):
        yield
