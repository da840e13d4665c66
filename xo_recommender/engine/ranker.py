"""A linear ranking learned from a site's own held-out discoveries.

Why linear, and why this loss: the features are already strong, scale-free scores
(``features.py``), so what is to be learned is how much each one counts on *this* site;
a linear score keeps serving at one multiply-add per feature, its weights are readable
in the admin, and each feature's share of a result's score is an honest reason. The
weights minimise a listwise softmax loss (the negative log-probability that the user's
held-out businesses come first among sampled candidates; a smooth stand-in for NDCG)
with a little L2, by L-BFGS. Candidates are the held-out businesses, the top businesses
of each feature (the hard negatives a ranking must get right) and a random few.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from xo_recommender.engine.features import FEATURES

__all__ = ["ListwiseSamples", "fit_listwise"]

#: Candidates taken from the top of each feature, and at random, per user.
TOP_PER_FEATURE = 40
RANDOM_CANDIDATES = 60


@dataclass
class ListwiseSamples:
    """Candidate feature rows of many users, grouped by user, with target flags."""

    names: tuple[str, ...] = FEATURES
    rows: list[np.ndarray] = field(default_factory=list)  # (m_u, f) float32 per user
    targets: list[np.ndarray] = field(default_factory=list)  # (m_u,) bool per user

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, features: Mapping[str, np.ndarray], candidates: np.ndarray,
            target_idx: np.ndarray, *, zero: Sequence[str] = ()) -> None:
        """Add one user: ``features`` over all items, candidate and target indices."""
        cand = np.unique(np.concatenate([candidates, target_idx]).astype(np.int64))
        if cand.size < 2 or target_idx.size == 0:
            return
        m = np.zeros((cand.size, len(self.names)), np.float32)
        for j, name in enumerate(self.names):
            v = features.get(name)
            if v is not None and name not in zero:
                m[:, j] = v[cand]
        self.rows.append(m)
        self.targets.append(np.isin(cand, target_idx))


def candidate_indices(features: Mapping[str, np.ndarray], mask: np.ndarray,
                      rng: np.random.Generator, *, top: int = TOP_PER_FEATURE,
                      n_random: int = RANDOM_CANDIDATES) -> np.ndarray:
    """The top ``top`` candidates of each feature plus ``n_random`` random ones."""
    allowed = np.flatnonzero(mask)
    if allowed.size == 0:
        return allowed
    picks = [rng.choice(allowed, min(n_random, allowed.size), replace=False)]
    for v in features.values():
        s = v[allowed]
        if not s.any():
            continue
        k = min(top, s.size - 1)
        picks.append(allowed[np.argpartition(-s, k)[:k + 1]] if k > 0 else allowed)
    return np.unique(np.concatenate(picks))


def fit_listwise(samples: ListwiseSamples, use: Sequence[str], *, l2: float = 1e-5,
                 start: Mapping[str, float] | None = None) -> dict[str, float]:
    """Weights for the features in ``use`` (others stay zero), by listwise softmax."""
    cols = [samples.names.index(name) for name in use]
    if not samples.rows or not cols:
        return {name: 0.0 for name in use}
    x = np.concatenate([r[:, cols] for r in samples.rows]).astype(np.float64)
    t = np.concatenate(samples.targets)
    sizes = np.array([r.shape[0] for r in samples.rows])
    seg = np.repeat(np.arange(sizes.size), sizes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    n_target = np.bincount(seg, weights=t, minlength=sizes.size)
    user_w = 1.0 / (sizes.size * np.maximum(n_target, 1.0))
    row_w = user_w[seg]
    target_sum = n_target
    xt = (x * (t * row_w)[:, None]).sum(axis=0)  # Σ_u mean target features / n_users

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - top[seg])
        z = np.add.reduceat(e, starts)
        lse = top + np.log(z)
        p = e / z[seg]
        # Σ_u (1/n)(1/|T_u|) Σ_t (lse_u - s_t)
        value = float((target_sum * lse * user_w).sum() - (s * t * row_w).sum())
        grad = (x * (p * (target_sum * user_w)[seg])[:, None]).sum(axis=0) - xt
        value += 0.5 * l2 * float(w @ w)
        return value, grad + l2 * w

    w0 = np.array([float((start or {}).get(name, 0.0)) for name in use])
    result = minimize(loss, w0, jac=True, method="L-BFGS-B",
                      options={"maxiter": 200, "gtol": 1e-7})
    w = np.where(np.isfinite(result.x), result.x, 0.0)
    return {name: float(v) for name, v in zip(use, w, strict=True)}
