"""Popularity and rating priors: what to show when we know little about a user.

Both priors are absolute scores in [0, 1] over item indices, so the blend can use them
as they are (normalisation "none") and a new user still gets a sensible ranking.

* Popularity is the time-decayed sum of interaction weights per item (half-life decay,
  so last month's hit does not beat this week's), or the host's own popularity column.
  It is log-scaled, ``log1p(x) / log1p(max)``: popularity is heavy-tailed, and a linear
  scale would give every item but the top few a prior of about zero.
* Ratings are shrunk towards the catalogue mean (a Bayesian average), so one 5-star
  review does not outrank a hundred 4.8s, then mapped linearly from the rating scale
  to [0, 1].
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "bayesian_average",
    "cold_start_prior",
    "decayed_popularity",
    "log_normalise",
    "matrix_popularity",
    "rating_prior",
    "shrunk_rating",
]


def decayed_popularity(
    item_indices: np.ndarray,
    n_items: int,
    *,
    timestamps: np.ndarray,
    now: float,
    half_life: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per-item sum of ``weight × 0.5 ** (age / half_life)`` (float64, raw, n_items).

    ``timestamps``, ``now`` and ``half_life`` are in the same unit (seconds, as in
    ``matrix.interaction_weights``); future timestamps count as age 0. Indices outside
    ``0..n_items-1`` (items unknown to this model version) are ignored.
    """
    if not half_life > 0:
        raise ValueError(f"half_life must be positive, got {half_life}")
    idx = np.asarray(item_indices, dtype=np.int64).ravel()
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    w = np.ones(idx.shape[0]) if weights is None else np.asarray(weights, np.float64).ravel()
    if not idx.shape == t.shape == w.shape:
        raise ValueError("item_indices, timestamps and weights must have the same length")
    age = np.maximum(float(now) - t, 0.0)
    decayed = w * np.power(0.5, age / float(half_life))
    keep = (idx >= 0) & (idx < n_items) & np.isfinite(decayed)
    return np.bincount(idx[keep], weights=decayed[keep], minlength=n_items)


def matrix_popularity(interactions: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Per-item column sums of an (already weighted and decayed) user×item matrix.

    Using the collaborative model's own training matrix keeps popularity and the model
    consistent by construction (same weights, same decay).
    """
    return np.asarray(interactions.sum(axis=0), dtype=np.float64).ravel()


def log_normalise(values: np.ndarray) -> np.ndarray:
    """``log1p(v) / log1p(max v)`` in [0, 1] (float32); NaN and negatives count as 0."""
    v = np.maximum(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0), 0)
    top = float(v.max()) if v.size else 0.0
    if top <= 0:
        return np.zeros(v.shape, dtype=np.float32)
    return (np.log1p(v) / np.log1p(top)).astype(np.float32)


def bayesian_average(
    rating_sums: np.ndarray,
    rating_counts: np.ndarray,
    *,
    prior_mean: float | None = None,
    prior_count: float = 5.0,
) -> np.ndarray:
    """``(C·m + sum) / (C + n)`` per item (float64).

    ``C = prior_count`` is how many "average" votes every item starts with; ``m``
    defaults to the catalogue mean ``Σsum / Σn`` (or NaN if nobody rated anything). An
    item without ratings gets exactly ``m``.
    """
    s = np.nan_to_num(np.asarray(rating_sums, dtype=np.float64), nan=0.0)
    n = np.maximum(np.nan_to_num(np.asarray(rating_counts, dtype=np.float64), nan=0.0), 0.0)
    if s.shape != n.shape:
        raise ValueError("rating_sums and rating_counts must have the same shape")
    if prior_count < 0:
        raise ValueError("prior_count must be non-negative")
    if prior_mean is None:
        prior_mean = float(s.sum() / n.sum()) if n.sum() > 0 else float("nan")
    denom = prior_count + n
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (prior_count * prior_mean + s) / denom
    return np.where(denom > 0, out, prior_mean)


def shrunk_rating(
    mean_ratings: np.ndarray,
    rating_counts: np.ndarray | None = None,
    *,
    prior_mean: float | None = None,
    prior_count: float = 5.0,
    assumed_count: float = 1.0,
) -> np.ndarray:
    """Bayesian average from a mean rating per item (NaN = unrated) and, if known, counts.

    When the host stores only a rating, each rated item is treated as ``assumed_count``
    votes (default 1, the cautious reading: one 5.0 might be a single review). The
    result keeps the order of the raw ratings but pulls them towards the mean, so the
    rating prior matters less when we cannot tell how well-founded it is. ``prior_mean``
    defaults to the (count-weighted) mean of the known ratings.
    """
    r = np.asarray(mean_ratings, dtype=np.float64)
    rated = np.isfinite(r)
    if rating_counts is None:
        n = np.where(rated, float(assumed_count), 0.0)
    else:
        n = np.where(rated, np.nan_to_num(np.asarray(rating_counts, dtype=np.float64)), 0.0)
    return bayesian_average(
        np.where(rated, r, 0.0) * n, n, prior_mean=prior_mean, prior_count=prior_count
    )


def rating_prior(ratings: np.ndarray, scale: tuple[float, float] = (1.0, 5.0)) -> np.ndarray:
    """Map ratings linearly from ``scale`` (e.g. 1-5 stars) to [0, 1] (float32; NaN -> 0)."""
    lo, hi = float(scale[0]), float(scale[1])
    if not hi > lo:
        raise ValueError(f"rating scale must be increasing, got {scale}")
    r = (np.asarray(ratings, dtype=np.float64) - lo) / (hi - lo)
    return np.clip(np.nan_to_num(r, nan=0.0), 0.0, 1.0).astype(np.float32)


def cold_start_prior(
    popularity: np.ndarray, rating: np.ndarray, *, rating_weight: float = 0.3
) -> np.ndarray:
    """``(1 - w)·popularity + w·rating``, both in [0, 1] (float32).

    Popularity leads because it reflects what people here actually do; rating breaks
    ties among similarly popular places. ``rating_weight`` is in [0, 1].
    """
    if not 0.0 <= rating_weight <= 1.0:
        raise ValueError(f"rating_weight must be in [0, 1], got {rating_weight}")
    p = np.asarray(popularity, dtype=np.float32)
    r = np.asarray(rating, dtype=np.float32)
    if p.shape != r.shape:
        raise ValueError("popularity and rating must have the same shape")
    w = np.float32(rating_weight)
    return ((np.float32(1.0) - w) * p + w * r).astype(np.float32)
