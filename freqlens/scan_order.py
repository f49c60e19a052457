"""Spectral scan orders (Spectral VMamba): the patch kNN graph, its Laplacian eigenvectors, and diagnostics.

Spectral VMamba (arXiv 2503.06369) visits the patches of an image in the order of the low Laplacian
eigenvectors of a Gaussian kNN graph over the patch features. The order is a discrete function of an
eigen-decomposition, so it is only as well defined as the spectrum: a disconnected graph or a small
eigengap makes it depend on LAPACK internals, thread counts and the other images in the batch.
This module holds the math (used by ``freqlens.models.spectral_vmamba``) and the diagnostics that tell
users when an order is ill-defined.

Official code: ``Sahardastani/spectral_vmamba@389a8be``, ``classification/models/csms6s.py`` (``CrossScan``)
and ``classification/models/vmamba.py`` (``forward_corev2``: ``sort_b_based_on_a`` and the derived orders).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from freqlens.errors import FreqlensError

if TYPE_CHECKING:
    import networkx

OrderMode = Literal["official", "deterministic"]
SigmaMode = Literal["batch", "sample"]
ORDER_MODES: tuple[str, ...] = ("official", "deterministic")
SIGMA_MODES: tuple[str, ...] = ("batch", "sample")


@dataclasses.dataclass(frozen=True)
class SpectralGraph:
    """The patch graph of one batch: Gaussian kNN adjacency (B, L, L) and the kernel width per sample (B,)."""

    adjacency: torch.Tensor
    sigma: torch.Tensor


def patch_tokens(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, C) row-major tokens, a view (keeps the caller's memory layout, as the official view)."""
    b, c = features.shape[:2]
    return features.view(b, c, -1).transpose(1, 2)


def knn_graph_adjacency(tokens: torch.Tensor, knn: int = 5, sigma_mode: SigmaMode = "batch",
                        exact: bool = False) -> SpectralGraph:
    """Gaussian kNN adjacency of ``tokens`` (B, L, C), the op sequence of the official ``CrossScan.adjacency``.

    sigma is the mean of all pairwise distances, over the **whole batch** (official, ``sigma_mode="batch"``)
    or per sample (``"sample"``). Each node keeps its ``knn`` largest weights (itself included); the graph is
    symmetrised by writing ``A[n, idx] = w`` and then ``A[idx, n] = w`` (the transposed write wins).
    ``exact`` uses the difference formula for the distances (self-distance exactly 0) and a stable
    descending sort for the kNN (ties go to the lower index); the official path uses ``torch.cdist``'s
    matmul formula and ``torch.topk``.
    """
    if sigma_mode not in SIGMA_MODES:
        raise ValueError(f"sigma_mode must be one of {SIGMA_MODES}, got {sigma_mode!r}")
    b, n, _ = tokens.shape
    if knn > n:
        raise FreqlensError(f"the patch graph has {n} nodes, fewer than knn={knn}", hint="use a larger input image")
    if exact:
        dist = torch.cdist(tokens, tokens, p=2, compute_mode="donot_use_mm_for_euclid_dist")
    else:
        dist = torch.cdist(tokens, tokens, p=2)
    sigma = dist.mean() if sigma_mode == "batch" else dist.mean(dim=(1, 2), keepdim=True)
    weights = torch.exp(-(dist**2) / (2 * sigma**2))
    if exact:
        value, index = torch.sort(weights, dim=2, descending=True, stable=True)
        value, index = value[..., :knn], index[..., :knn]
    else:
        value, index = torch.topk(weights, knn, dim=2, largest=True)
    adjacency = torch.zeros(b, n, n, device=tokens.device, dtype=weights.dtype)
    b_idx = torch.arange(b, device=tokens.device)[:, None, None]
    n_idx = torch.arange(n, device=tokens.device)[:, None]
    adjacency[b_idx, n_idx, index] = value
    adjacency[b_idx, index, n_idx] = value  # official quirk: union symmetrisation, the second write wins
    return SpectralGraph(adjacency, sigma.reshape(-1).expand(b) if sigma.numel() == 1 else sigma.reshape(b))


def symmetric_laplacian(adjacency: torch.Tensor) -> torch.Tensor:
    """I - D^-1/2 A D^-1/2 for (B, L, L) adjacencies (degree = row sums, self-loops included).

    The official code multiplies by ``diag_embed(deg^-1/2)`` with two ``bmm``; every output element there is
    one rounded product plus exact zeros, so the elementwise form below gives the same bits in O(L^2).
    """
    d = adjacency.sum(dim=2).pow(-0.5)
    eye = torch.eye(adjacency.shape[1], device=adjacency.device, dtype=adjacency.dtype)
    return eye - (d[:, :, None] * adjacency) * d[:, None, :]


def spectral_coordinates(laplacian: torch.Tensor, top_k: int = 4,
                         deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (B, L) and the per-node signed eigenvectors 1..top_k (B, L, top_k) of ``laplacian``.

    Official (``csms6s.py: topk_eigenvectors``): ``torch.linalg.eigh`` (ascending; the official re-sort of the
    eigenvalues is a no-op and is skipped), columns 1..top_k, then each **row** multiplied by the sign of its
    mean over the top_k columns (quirk: this does not fix eigenvector signs; a zero mean zeroes the row).
    ``deterministic`` first replaces each eigenspace basis by a canonical one (see ``_canonical_basis``) so
    the result does not depend on the LAPACK build, the thread count or the eigenvector signs.
    """
    eigvals, eigvecs = torch.linalg.eigh(laplacian)
    if deterministic:
        eigvecs = _canonical_basis(eigvals, eigvecs, top_k + 2)
    vecs = eigvecs[:, :, 1 : top_k + 1]
    return eigvals, vecs * vecs.mean(dim=2, keepdim=True).sign()


def _canonical_basis(eigvals: torch.Tensor, eigvecs: torch.Tensor, count: int, rel_tol: float = 1e-9) -> torch.Tensor:
    """Replace the first ``count`` eigenvectors by a basis fixed by their eigenspaces alone.

    Eigenvalues closer than ``rel_tol`` (relative to the spectral range) form one cluster; for a cluster
    spanned by U, the projector P = U U^T is unique, and the basis is built greedily: take the column of P
    with the largest diagonal entry (lowest index on ties), normalise it, deflate P, repeat. A single
    eigenvector thus gets the sign that makes its largest-magnitude entry positive.
    """
    out = eigvecs.clone()
    scale = (eigvals[:, -1] - eigvals[:, 0]).abs().clamp_min(1.0)
    for b in range(eigvals.shape[0]):
        start = 0
        while start < count:
            stop = start + 1
            while stop < eigvals.shape[1] and eigvals[b, stop] - eigvals[b, stop - 1] <= rel_tol * scale[b]:
                stop += 1
            u = eigvecs[b, :, start:stop]
            proj = u @ u.T
            for col in range(start, stop):
                j = int(torch.argmax(torch.diagonal(proj)))
                v = proj[:, j] / proj[j, j].sqrt()
                out[b, :, col] = v
                proj = proj - v[:, None] * v[None, :]
            start = stop
    return out


def spectral_order(features: torch.Tensor, top_k: int = 4, knn: int = 5, mode: OrderMode = "official",
                   sigma_mode: SigmaMode = "batch") -> torch.Tensor:
    """Spectral coordinates (B, L, top_k) of the patches of ``features`` (B, C, H, W), in token order.

    Sequence k of the scan visits the tokens in increasing order of column k (``scan_order_from_coordinates``).
    ``official``: the exact op sequence of the official ``CrossScan`` in the input's dtype (float32 in the
    official code; bit-exact only on the same library build and thread count). ``deterministic``: float64 on
    the CPU with exact distances, stable kNN ties and canonical eigenvectors; it does not reproduce the
    official order, but it is reproducible across devices, thread counts and batch compositions (with
    ``sigma_mode="sample"``).
    """
    if mode not in ORDER_MODES:
        raise ValueError(f"scan order mode must be one of {ORDER_MODES}, got {mode!r}")
    deterministic = mode == "deterministic"
    tokens = patch_tokens(features)
    if deterministic:
        tokens = tokens.detach().to(device="cpu", dtype=torch.float64)
    elif tokens.dtype not in (torch.float32, torch.float64):
        tokens = tokens.float()  # official: under fp16 autocast cdist runs in float32, eigh too
    graph = knn_graph_adjacency(tokens, knn=knn, sigma_mode=sigma_mode, exact=deterministic)
    _, coords = spectral_coordinates(symmetric_laplacian(graph.adjacency), top_k=top_k, deterministic=deterministic)
    return coords.to(features.device)


def scan_order_from_coordinates(coords: torch.Tensor) -> torch.Tensor:
    """(B, L, K) coordinates -> (B, L, K) int64 order: column k lists the tokens by increasing coordinate.

    The official code uses ``torch.sort(dim=1)``; a stable sort gives the same result without ties and a
    defined one (lower token index first) with them.
    """
    return torch.sort(coords, dim=1, stable=True).indices


def kept_token_indices(prev_hw: tuple[int, int], device: torch.device | None = None) -> torch.Tensor:
    """Flat indices (row-major, previous grid) of the tokens kept by the stride-2, kernel-1 max-pool.

    These are the official ``MaxPool2d(kernel_size=1, stride=2, return_indices=True)`` indices: the even rows
    and columns, ``2i * W_prev + 2j``, over a ceil(H/2) x ceil(W/2) grid.
    """
    h, w = prev_hw
    rows = torch.arange(0, h, 2, device=device)
    cols = torch.arange(0, w, 2, device=device)
    return (rows[:, None] * w + cols[None, :]).reshape(-1)


def derive_scan_order(order: torch.Tensor, prev_hw: tuple[int, int], new_hw: tuple[int, int],
                      true_width: bool = False) -> torch.Tensor:
    """The order of the next stage from the previous one (official ``forward_corev2``, block 0 of stage i >= 1).

    Per sequence k: the position of each previous token in sequence k (a table of size max(order[..., k]) + 1
    over the batch, filled with L_prev + 1, where the last write wins for duplicate tokens), the kept tokens
    sorted by that position (stable), then mapped to the new grid **assuming the previous width is twice the
    new width** (official quirk: wrong for odd widths, where the result is not a permutation; at 224 the
    stage-2 orders repeat and miss tokens). ``true_width=True`` uses the real previous width (opt-in fix).
    """
    b, l_prev, top_k = order.shape
    kept = kept_token_indices(prev_hw, order.device)
    new_w = new_hw[1]
    n_x = prev_hw[1] if true_width else 2 * new_w
    columns = []
    for k in range(top_k):
        col = order[..., k]
        size = int(col.max()) + 1
        if int(kept.max()) >= size:
            raise FreqlensError(
                f"cannot derive the scan order for a {prev_hw[0]}x{prev_hw[1]} -> {new_hw[0]}x{new_hw[1]} grid: the "
                f"previous order only reaches token {size - 1} but the stride-2 pool keeps token {int(kept.max())} "
                "(the official code fails with an index error here)",
                hint="use an input whose feature grids have even widths (e.g. 256x256), or true_width=True",
            )
        table = torch.full((b, size), l_prev + 1, dtype=torch.long, device=order.device)
        positions = torch.arange(l_prev, device=order.device).expand(b, -1)
        table.scatter_reduce_(1, col, positions, reduce="amax", include_self=False)  # last write wins
        pos = table[:, kept]
        ranked = kept[torch.argsort(pos, dim=1, stable=True)]
        columns.append(((ranked // n_x) // 2) * new_w + (ranked % n_x) // 2)
    return torch.stack(columns, dim=-1)


def merge_positions(order: torch.Tensor) -> torch.Tensor:
    """(B, L, K) order -> (B, K, L): for each token, the step of sequence k whose output it receives.

    This is the official ``CrossMerge``'s ``argsort(order, dim=1)`` (stable here): the inverse permutation for a
    valid order; for a non-permutation order (stage 2 at 224) tokens receive the outputs of wrong steps.
    """
    return torch.argsort(order, dim=1, stable=True).transpose(1, 2)


def validate_order(order: torch.Tensor, batch: int, num_tokens: int, top_k: int) -> torch.Tensor:
    """Check an injected stage-0 order: (B, L, top_k) int64 with token indices in [0, L)."""
    if not isinstance(order, torch.Tensor) or order.dtype != torch.int64:
        raise ValueError(f"scan order must be an int64 tensor, got {getattr(order, 'dtype', type(order).__name__)}")
    if tuple(order.shape) != (batch, num_tokens, top_k):
        raise ValueError(f"scan order must have shape {(batch, num_tokens, top_k)} for this input, "
                         f"got {tuple(order.shape)}")
    if order.numel() and (int(order.min()) < 0 or int(order.max()) >= num_tokens):
        raise ValueError(f"scan order values must lie in [0, {num_tokens}), "
                         f"got [{int(order.min())}, {int(order.max())}]")
    return order


# ----------------------------------------------------------------------------------------------------------
# Diagnostics for users


@dataclasses.dataclass(frozen=True)
class ScanOrderDiagnostics:
    """How well defined the stage-0 spectral order of one image is.

    Attributes:
        num_components: connected components of the kNN patch graph (> 1: eigenvalue 0 is repeated).
        component_sizes: node counts of the components, largest first.
        eigenvalues: the smallest ``top_k + 2`` Laplacian eigenvalues (float64).
        eigengaps: differences of consecutive eigenvalues among them.
        min_gap: the smallest of those gaps (the order uses eigenvectors 1..top_k, so every gap up to
            eigenvalue top_k + 1 matters).
        sigma: the Gaussian kernel width used.
        ill_defined: True when the graph is disconnected or ``min_gap`` is below the tolerance.
        reasons: human-readable explanations of ``ill_defined``.
    """

    num_components: int
    component_sizes: tuple[int, ...]
    eigenvalues: tuple[float, ...]
    eigengaps: tuple[float, ...]
    min_gap: float
    sigma: float
    ill_defined: bool
    reasons: tuple[str, ...]


def knn_graph(adjacency: torch.Tensor, grid_hw: tuple[int, int] | None = None) -> "networkx.Graph":
    """The (L, L) adjacency of one image as an undirected networkx graph (self-loops dropped).

    Nodes are flat token indices; with ``grid_hw`` each node carries its ``pos=(row, col)`` for drawing.
    """
    import networkx as nx

    if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be (L, L) for one image, got {tuple(adjacency.shape)}")
    a = adjacency.detach().to("cpu", torch.float64)
    graph = nx.Graph()
    graph.add_nodes_from(range(a.shape[0]))
    rows, cols = torch.nonzero(torch.triu(a, diagonal=1), as_tuple=True)
    graph.add_weighted_edges_from((int(i), int(j), float(a[i, j])) for i, j in zip(rows, cols, strict=True))
    if grid_hw is not None:
        w = grid_hw[1]
        nx.set_node_attributes(graph, {n: (n // w, n % w) for n in graph.nodes}, "pos")
    return graph


def patch_graphs(features: torch.Tensor, knn: int = 5, sigma_mode: SigmaMode = "batch") -> list["networkx.Graph"]:
    """The kNN patch graph of each image of the scan input ``features`` (B, C, H, W), as networkx graphs.

    Built in float64 with the official rules (Gaussian weights, kNN incl. the patch itself, union
    symmetrisation); nodes are flat token indices with their grid position ``pos=(row, col)``.
    """
    graph = knn_graph_adjacency(patch_tokens(features).detach().to("cpu", torch.float64), knn, sigma_mode, exact=True)
    return [knn_graph(a, tuple(features.shape[-2:])) for a in graph.adjacency]


def diagnose_features(features: torch.Tensor, top_k: int = 4, knn: int = 5, sigma_mode: SigmaMode = "batch",
                      gap_tol: float = 1e-3) -> list[ScanOrderDiagnostics]:
    """Diagnose the spectral order of each image from the scan input ``features`` (B, C, H, W).

    The graph is rebuilt in float64 with the official rules (same kNN, same symmetrisation, the given sigma
    mode); ``gap_tol`` is the smallest eigengap considered safe (orders with smaller gaps change under
    perturbations as small as a different thread count).
    """
    import networkx as nx

    tokens = patch_tokens(features).detach().to("cpu", torch.float64)
    graph = knn_graph_adjacency(tokens, knn=knn, sigma_mode=sigma_mode, exact=True)
    eigvals = torch.linalg.eigvalsh(symmetric_laplacian(graph.adjacency))[:, : top_k + 2]
    out = []
    for b in range(tokens.shape[0]):
        components = sorted((len(c) for c in nx.connected_components(knn_graph(graph.adjacency[b]))), reverse=True)
        vals = eigvals[b]
        gaps = vals[1:] - vals[:-1]
        min_gap = float(gaps.min())
        reasons = []
        if len(components) > 1:
            reasons.append(f"kNN graph has {len(components)} connected components {components}: eigenvalue 0 is "
                           f"repeated {len(components)} times, so eigenvector 1 is arbitrary")
        if min_gap < gap_tol:
            reasons.append(f"smallest eigengap {min_gap:.3g} < {gap_tol:g}: the order depends on rounding")
        out.append(ScanOrderDiagnostics(
            num_components=len(components), component_sizes=tuple(components),
            eigenvalues=tuple(float(v) for v in vals), eigengaps=tuple(float(g) for g in gaps), min_gap=min_gap,
            sigma=float(graph.sigma[b]), ill_defined=bool(reasons), reasons=tuple(reasons),
        ))
    return out


@torch.no_grad()
def capture_scan_input(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Run a Spectral VMamba ``model`` (eval mode, restored afterwards) and return its stage-0 scan input.

    That is the (B, 2*256, H/16, W/16) tensor ``SiLU(in_proj(norm(RFN(images))))`` from which the spectral
    order is computed, captured at the model's ``CrossScan`` module.
    """
    from freqlens.lens.lens import preserved_state

    scan = getattr(model, "spectral_scan", None)
    if scan is None:
        raise FreqlensError(f"{type(model).__name__} has no spectral scan", hint="use a spectral_vmamba_* model")
    captured: list[torch.Tensor] = []
    handle = scan.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        with preserved_state(model):
            model.eval()
            model.forward_features(images)
    finally:
        handle.remove()
    if not captured:
        raise FreqlensError("the model computed no spectral order (an injected order is set)",
                            hint="call model.set_scan_order(None) first")
    return captured[0]


def diagnose_scan_order(model: nn.Module, images: torch.Tensor, gap_tol: float = 1e-3) -> list[ScanOrderDiagnostics]:
    """Diagnose the stage-0 spectral order of each image with the model's own kNN size, top_k and sigma mode."""
    scan = model.spectral_scan
    features = capture_scan_input(model, images)
    return diagnose_features(features, top_k=scan.top_k, knn=scan.knn, sigma_mode=scan.sigma_mode, gap_tol=gap_tol)
