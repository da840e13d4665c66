"""Offline ranking metrics, defined exactly as the ml-100k dataset README specifies.

Every per-user metric takes ``recommended`` (a ranked sequence of item ids, best first)
and ``relevant`` (the user's test items). Only the first ``k`` recommendations count.
The definitions follow Microsoft Recommenders so that our numbers are comparable with
their published tables: precision divides by ``k`` even when fewer items were ranked,
``map_at_k`` divides by ``|relevant|`` and ``map_min_k`` by ``min(|relevant|, k)``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import numpy as np

__all__ = [
    "catalog_coverage",
    "hit_rate",
    "map_at_k",
    "map_min_k",
    "ndcg_at_k",
    "precision_at_k",
    "rank_top_k",
    "recall_at_k",
]


def rank_top_k(
    scores: np.ndarray,
    k: int,
    exclude: Iterable[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Return the indices of the ``k`` best ``scores``, best first, ties to the lower index.

    ``exclude`` (e.g. the user's train items) are never returned. Item indices are
    assigned in ascending external-id order (see ``matrix.IdIndex``), so "lower index"
    is "lower item id", the tie rule of the evaluation protocol. Runs in O(n) plus a
    sort of the (usually tiny) candidate set, so it is also the serving top-k.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    n = s.shape[0]
    allowed = np.ones(n, dtype=bool)
    if exclude is not None:
        ex = np.asarray(exclude if isinstance(exclude, np.ndarray) else list(exclude))
        if ex.size:
            allowed[ex.astype(np.int64, copy=False)] = False
    allowed &= ~np.isnan(s)
    cand = np.flatnonzero(allowed)
    if k <= 0 or cand.size == 0:
        return np.empty(0, dtype=np.int64)
    cs = s[cand]
    if cand.size > k:
        # Keep everything at least as good as the k-th best so ties are resolved exactly.
        kth = np.partition(cs, cand.size - k)[cand.size - k]
        keep = cs >= kth
        cand, cs = cand[keep], cs[keep]
    order = np.lexsort((cand, -cs))
    return cand[order[:k]].astype(np.int64)


def _hits(recommended: Sequence[int], relevant: Collection[int], k: int) -> np.ndarray:
    rel = relevant if isinstance(relevant, (set, frozenset)) else set(relevant)
    return np.array([1.0 if item in rel else 0.0 for item in list(recommended)[:k]])


def precision_at_k(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Hits in the top ``k`` divided by ``k`` (not by the list length)."""
    return float(_hits(recommended, relevant, k).sum() / k)


def recall_at_k(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Hits in the top ``k`` divided by the number of relevant items."""
    if not relevant:
        return 0.0
    return float(_hits(recommended, relevant, k).sum() / len(relevant))


def ndcg_at_k(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Binary-relevance NDCG: DCG of the hits over the DCG of a perfect top ``k``."""
    if not relevant:
        return 0.0
    hits = _hits(recommended, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((hits * discounts[: hits.size]).sum())
    idcg = float(discounts[: min(len(relevant), k)].sum())
    return dcg / idcg


def _ap_numerator(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    hits = _hits(recommended, relevant, k)
    if hits.size == 0:
        return 0.0
    precisions = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precisions * hits).sum())


def map_at_k(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Average precision ÷ ``|relevant|`` (Microsoft Recommenders' ``map``)."""
    if not relevant:
        return 0.0
    return _ap_numerator(recommended, relevant, k) / len(relevant)


def map_min_k(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    """Average precision ÷ ``min(|relevant|, k)`` (their current ``map_at_k``, Spark's)."""
    if not relevant:
        return 0.0
    return _ap_numerator(recommended, relevant, k) / min(len(relevant), k)


def hit_rate(recommended: Sequence[int], relevant: Collection[int], k: int) -> float:
    """1.0 if any of the top ``k`` is relevant, else 0.0; its mean over users is HR@k."""
    return float(_hits(recommended, relevant, k).any())


def catalog_coverage(recommendations: Iterable[Sequence[int]], n_train_items: int) -> float:
    """Distinct items over all recommendation lists ÷ distinct items in train."""
    if n_train_items <= 0:
        return 0.0
    distinct: set[int] = set()
    for rec in recommendations:
        distinct.update(int(i) for i in rec)
    return len(distinct) / n_train_items
