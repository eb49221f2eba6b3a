"""Synthetic embeddings for the index's tests and benchmarks: unit vectors with the neighbourhood
structure of learned embeddings, so that an IVF index must be tuned to find their neighbours."""

from __future__ import annotations

import numpy as np


def clustered_vectors(
    n: int,
    dim: int,
    clusters: int = 1000,
    seed: int = 0,
    draw: int = 0,
    rank: int = 16,
    spread: float = 0.8,
    noise: float = 0.3,
) -> np.ndarray:
    """(n, dim) float32 unit rows from a seeded mixture of Gaussian clusters. ``seed`` fixes the mixture
    (centres, sizes, directions), ``draw`` the points, so queries (another draw) come from the same
    clusters. Each cluster: unit centre + a Gaussian in ``rank`` random directions (norm ~``spread``)
    + isotropic noise (norm ~``noise``): neighbours are meaningful, as in learned embeddings, rather
    than the equidistant crowd an isotropic Gaussian gives in high dimension. Generated a cluster at a
    time into a preallocated array, so memory is the output plus one cluster."""
    model = np.random.default_rng([seed, 0])
    centres = model.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = model.dirichlet(np.full(clusters, 2.0))
    rng = np.random.default_rng([seed, 1, draw])
    sizes = rng.multinomial(n, weights)
    where = rng.permutation(n)  # clusters interleaved in row order, as a real collection would be
    rank = min(rank, dim)
    out = np.empty((n, dim), dtype=np.float32)
    start = 0
    for c in np.flatnonzero(sizes):
        directions = np.random.default_rng([seed, 2, c]).standard_normal((rank, dim), dtype=np.float32)
        m = int(sizes[c])
        block = rng.standard_normal((m, rank), dtype=np.float32) @ directions
        block *= spread / np.sqrt(rank * dim)
        block += rng.standard_normal((m, dim), dtype=np.float32) * np.float32(noise / np.sqrt(dim))
        block += centres[c]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[where[start : start + m]] = block
        start += m
    return out
