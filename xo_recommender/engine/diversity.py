"""Maximal Marginal Relevance (MMR) re-ranking, so a page is not ten of the same kind.

MMR picks, one at a time, the candidate maximising
``λ · relevance − (1 − λ) · max similarity to the items already picked``. Similarity is
between category vectors (cosine or Jaccard). It runs on a small candidate pool (e.g.
the blend's top 5×k), not the catalogue: the pool's similarity matrix is at most a few
hundred squared, and each of the k greedy steps is one vectorised pass over the pool.

Relevance is divided by the pool's best score so that λ means the same thing on every
request: at λ = 0.5 the top item's relevance weighs as much as one full category match.
λ = 1 keeps the blend's order; λ = 0 is pure novelty after the first pick.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from xo_recommender.engine.content import normalise_term

__all__ = ["SIMILARITIES", "category_index", "category_matrix", "mmr_rerank", "pool_similarity"]

SIMILARITIES = ("cosine", "jaccard")

Features = sp.spmatrix | sp.sparray | np.ndarray


def category_matrix(category_lists: Sequence[Iterable[str]]) -> sp.csr_matrix:
    """Binary item×category CSR matrix (float32) from one category list per item.

    Categories match after ``content.normalise_term``; blanks and None are skipped.
    """
    return category_index(category_lists)[0]


def category_index(category_lists: Sequence[Iterable[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """``category_matrix`` and its column names (normalised categories, in column order).

    The names let a caller turn a requested category into a column (a category filter).
    """
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, cats in enumerate(category_lists):
        if isinstance(cats, str):
            raise TypeError(f"item {i}: expected a list of categories, got the string {cats!r}")
        for cat in cats or ():
            key = normalise_term(cat) if cat is not None else ""
            if key:
                rows.append(i)
                cols.append(vocab.setdefault(key, len(vocab)))
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(category_lists), len(vocab)),
        dtype=np.float32,
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, list(vocab)


def pool_similarity(features: Features, similarity: str = "cosine") -> np.ndarray:
    """Dense pool×pool similarity of feature rows, in [0, 1]; items without features get 0.

    Cosine uses the feature values; Jaccard binarises them (shared / union categories).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; use one of {SIMILARITIES}")
    f = sp.csr_matrix(features, dtype=np.float64)
    if similarity == "cosine":
        norms = np.sqrt(np.asarray(f.multiply(f).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        g = sp.diags(inv) @ f
        sim = (g @ g.T).toarray()
    else:
        b = (f != 0).astype(np.float64)
        inter = (b @ b.T).toarray()
        sizes = np.asarray(b.sum(axis=1)).ravel()
        union = sizes[:, None] + sizes[None, :] - inter
        sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return np.clip(sim, 0.0, 1.0)


def mmr_rerank(
    pool_indices: np.ndarray | Sequence[int],
    pool_scores: np.ndarray | Sequence[float],
    item_features: Features,
    k: int,
    *,
    lambda_: float = 0.7,
    similarity: str = "cosine",
) -> np.ndarray:
    """Positions into the pool of the ``k`` MMR picks, in pick order.

    ``pool_indices`` are item indices (rows of ``item_features``, e.g. from
    ``category_matrix``) and ``pool_scores`` their relevance, usually the blend's
    ranking. Positions rather than item indices are returned so the caller can reorder
    everything that travels with the pool (``blend.Ranking.take``). Equal MMR values go
    to the earlier pool position, so λ = 1 reproduces the pool order exactly.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}")
    idx = np.asarray(pool_indices, dtype=np.int64).ravel()
    rel = np.nan_to_num(np.asarray(pool_scores, dtype=np.float64).ravel(), nan=0.0)
    if idx.shape != rel.shape:
        raise ValueError("pool_indices and pool_scores must have the same length")
    n = min(int(k), idx.shape[0])
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    top = float(rel.max())
    rel = rel / top if top > 0 else np.zeros_like(rel)
    if lambda_ == 1.0:
        return np.lexsort((np.arange(idx.shape[0]), -rel))[:n].astype(np.int64)
    rows = item_features[idx] if sp.issparse(item_features) else np.asarray(item_features)[idx]
    sim = pool_similarity(rows, similarity)

    picked = np.empty(n, dtype=np.int64)
    max_sim = np.zeros(idx.shape[0])
    available = np.ones(idx.shape[0], dtype=bool)
    for step in range(n):
        mmr = np.where(available, lambda_ * rel - (1.0 - lambda_) * max_sim, -np.inf)
        j = int(np.argmax(mmr))
        picked[step] = j
        available[j] = False
        np.maximum(max_sim, sim[j], out=max_sim)
    return picked
