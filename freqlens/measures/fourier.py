"""Fourier-grid helpers shared by the frequency measures."""
from __future__ import annotations

import torch


def normalised_radius(h: int, w: int, centred: bool = True, device: torch.device | None = None) -> torch.Tensor:
    """Radius sqrt(fy² + fx²) / f_Nyquist of each frequency of an (H, W) spectrum, 0 … √2.

    >>> normalised_radius(4, 4)[2]
    tensor([1.0000, 0.5000, 0.0000, 0.5000], dtype=torch.float64)
    """
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=device)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5
    return torch.fft.fftshift(radius) if centred else radius
