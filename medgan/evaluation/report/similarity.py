"""How alike volumes are: diversity (mode collapse, near-duplicates) and memorisation.

Similarity is the normalised cross-correlation (NCC) of two whole volumes on the report grid in
[-1, 1] (1 = the same up to brightness and contrast). NCC is used instead of SSIM for the
nearest-neighbour searches because it is one matrix product for all pairs.

* Diversity: mean pairwise MS-SSIM (MONAI) among synthetic samples minus that among real scans
  (> 0: the samples are more alike than real scans are: collapse). Near-duplicates: synthetic
  pairs with NCC at least ``floor`` *and* above the most alike pair of real scans.
* Memorisation (Dar et al. 2024 found diffusion models reproduce up to 41.7 % of CT training
  scans; GANs are not exempt): each synthetic sample's nearest training case by NCC. A sample
  is flagged as memorised when its distance (1 - NCC) to that case is below ``margin`` x the
  smallest distance any held-out real scan has to a training case. Why the margin: with "closer
  than every held-out scan" alone, a perfect generator's sample beats n held-out scans with
  chance 1 / (n + 1) (seen: 1 of 12 independent phantom heads flagged against 12 held-out
  ones); a copy or a lightly noised copy sits far inside half that distance. An ``enrich``
  case *is* its source head plus a lesion: it is compared with the other training cases, and
  two cases of one source are not duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _rows(volumes: torch.Tensor) -> torch.Tensor:
    flat = volumes.reshape(volumes.shape[0], -1).double()
    flat = flat - flat.mean(dim=1, keepdim=True)
    return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)


def ncc_matrix(first: torch.Tensor, second: torch.Tensor) -> np.ndarray:
    """NCC of every volume in ``first`` ``(N, ...)`` with every one in ``second`` ``(M, ...)``: ``(N, M)``."""
    return (_rows(first) @ _rows(second).T).numpy()


def off_diagonal(matrix: np.ndarray) -> np.ndarray:
    """The values above the diagonal of a square matrix (each unordered pair once)."""
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def _same_source(sources: Sequence[str | None], others: Sequence[str | None]) -> np.ndarray:
    """``(N, M)`` True where both name the same source head (never for unknown sources)."""
    return np.array([[a is not None and a == b for b in others] for a in sources], dtype=bool).reshape(
        len(sources), len(others)
    )


def near_duplicates(
    synthetic: torch.Tensor, real: torch.Tensor, *, floor: float, sources: Sequence[str | None] | None = None
) -> dict[str, object]:
    """Synthetic pairs more alike than the most alike real pair and at least ``floor`` (see the module docstring).

    ``sources``: each sample's source head (``enrich`` cases); two cases made from one head are
    alike by design and are not counted.
    """
    syn = ncc_matrix(synthetic, synthetic)
    if sources is not None:
        syn[_same_source(sources, sources)] = -np.inf
    real_max = float(off_diagonal(ncc_matrix(real, real)).max()) if real.shape[0] >= 2 else 1.0
    limit = max(real_max, floor)
    rows, cols = np.triu_indices(syn.shape[0], k=1)
    hits = syn[rows, cols] >= limit
    pairs = sorted(
        ((int(a), int(b), float(syn[a, b])) for a, b in zip(rows[hits], cols[hits], strict=True)), key=lambda p: -p[2]
    )
    flagged = sorted({i for a, b, _ in pairs for i in (a, b)})
    return {
        "share_flagged": len(flagged) / max(synthetic.shape[0], 1),
        "limit_ncc": limit,
        "most_alike_real_pair_ncc": real_max,
        "pairs": pairs,
    }


def memorisation(
    synthetic: torch.Tensor,
    training: torch.Tensor,
    held_out: torch.Tensor,
    *,
    sources: Sequence[str | None] | None = None,
    training_names: Sequence[str] | None = None,
    margin: float = 0.5,
) -> dict[str, object]:
    """Each synthetic sample's nearest training case, and which are memorised (see the module docstring).

    ``sources`` / ``training_names``: a sample made from a training head on purpose (an ``enrich``
    case names its ``source_subject``) is compared with the *other* training cases only.
    """
    syn_to_train = ncc_matrix(synthetic, training)
    excluded = 0
    if sources is not None and training_names is not None:
        own = _same_source(sources, training_names)
        excluded = int(own.any(axis=1).sum())
        syn_to_train[own] = -np.inf
    held_to_train = ncc_matrix(held_out, training)
    nearest = syn_to_train.argmax(axis=1)
    nearest_ncc = syn_to_train.max(axis=1)
    closest_held_out = float(held_to_train.max())  # the closest any held-out real scan comes to a training case
    limit = 1.0 - margin * (1.0 - closest_held_out)
    flagged = np.flatnonzero(nearest_ncc > limit)
    return {
        "share_flagged": float(flagged.size / max(synthetic.shape[0], 1)),
        "limit_ncc": limit,
        "closest_held_out_ncc": closest_held_out,
        "held_out_nearest_ncc": held_to_train.max(axis=1).tolist(),
        "nearest_training": nearest.tolist(),
        "nearest_ncc": nearest_ncc.tolist(),
        "flagged": flagged.tolist(),
        "compared_without_own_source": excluded,
    }
