"""A linear ranking learned from a site's own held-out discoveries.

Why linear, and why this loss: the features are already strong, scale-free scores
(``features.py``), so what is to be learned is how much each one counts on *this* site;
a linear score keeps serving at one multiply-add per feature, its weights are readable
in the admin, and each feature's share of a result's score is an honest reason. The
weights minimise a listwise softmax loss (the negative log-probability that the user's
held-out businesses come first among sampled candidates; a smooth stand-in for NDCG)
with a little L2, by L-BFGS. Candidates are the held-out businesses, the top businesses
of each feature (the hard negatives a ranking must get right) and a random few, all
among those a page ranks together (within reach: ``selfeval.Evaluator.within_reach``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from xo_recommender.engine.features import FEATURES

__all__ = ["ListwiseSamples", "fit_listwise"]

#: Candidates taken from the top of each feature, and at random, per user.
TOP_PER_FEATURE = 60
RANDOM_CANDIDATES = 200


@dataclass
class ListwiseSamples:
    """Candidate feature rows of many users, grouped by user, with target flags."""

    names: tuple[str, ...] = FEATURES
    rows: list[np.ndarray] = field(default_factory=list)  # (m_u, f) float32 per user
    targets: list[np.ndarray] = field(default_factory=list)  # (m_u,) bool per user
    owners: list[int | None] = field(default_factory=list)  # whose rows, per user

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, features: Mapping[str, np.ndarray], candidates: np.ndarray,
            target_idx: np.ndarray, *, zero: Sequence[str] = (),
            owner: int | None = None) -> None:
        """Add one user: ``features`` over all items, candidate and target indices
        (``owner``: the user's id, kept beside their rows so that a cross-fit can leave
        a user's own rows out of the weights it measures them with)."""
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
        self.owners.append(owner)

    def subset(self, keep: np.ndarray) -> ListwiseSamples:
        """The users' samples where ``keep`` (one flag per user, in order) is true."""
        picked = np.flatnonzero(keep)
        return ListwiseSamples(self.names, [self.rows[i] for i in picked],
                               [self.targets[i] for i in picked],
                               [self.owners[i] for i in picked])


def candidate_indices(features: Mapping[str, np.ndarray], mask: np.ndarray,
                      rng: np.random.Generator, *, top: int = TOP_PER_FEATURE,
                      n_random: int = RANDOM_CANDIDATES, max_seen: int = 300) -> np.ndarray:
    """The top ``top`` candidates of each feature, ``n_random`` random ones, and the
    businesses the user already knows (a ranking must learn what to do with those)."""
    allowed = np.flatnonzero(mask)
    if allowed.size == 0:
        return allowed
    picks = [rng.choice(allowed, min(n_random, allowed.size), replace=False)]
    seen = features.get("seen")
    if seen is not None:
        known = allowed[seen[allowed] > 0]
        picks.append(known if known.size <= max_seen else
                     rng.choice(known, max_seen, replace=False))
    for v in features.values():
        s = v[allowed]
        if not s.any():
            continue
        k = min(top, s.size - 1)
        picks.append(allowed[np.argpartition(-s, k)[:k + 1]] if k > 0 else allowed)
    return np.unique(np.concatenate(picks))


#: Features whose weight may be negative. Every other feature is evidence *for* a
#: business, so its weight is kept >= 0: a ranking then cannot win on the sampled
#: candidates by pushing up businesses that no feature favours (which would never be
#: sampled), and "closer" or "more popular" can never count against a place.
SIGNED = frozenset({"seen"})


def bound(name: str) -> tuple[float | None, float | None]:
    return (None, None) if name in SIGNED else (0.0, None)


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
    xt = x.T @ (t * row_w)  # Σ_u mean target features / n_users
    xt_rows = np.ascontiguousarray(x.T)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - top[seg])
        z = np.add.reduceat(e, starts)
        lse = top + np.log(z)
        p = e / z[seg]
        # Σ_u (1/n)(1/|T_u|) Σ_t (lse_u - s_t)
        value = float((n_target * lse * user_w).sum() - (s * t * row_w).sum())
        grad = xt_rows @ (p * (n_target * user_w)[seg]) - xt
        value += 0.5 * l2 * float(w @ w)
        return value, grad + l2 * w

    w0 = np.array([max(float((start or {}).get(name, 0.0)), 0.0) for name in use])
    result = minimize(loss, w0, jac=True, method="L-BFGS-B",
                      bounds=[bound(name) for name in use],
                      options={"maxiter": 150, "gtol": 1e-6})
    w = np.where(np.isfinite(result.x), result.x, 0.0)
    return {name: float(v) for name, v in zip(use, w, strict=True)}


def _padded(samples: ListwiseSamples, cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Users × candidates × features (padding rows are NaN) and the target flags."""
    m = max(r.shape[0] for r in samples.rows)
    x = np.full((len(samples.rows), m, len(cols)), np.nan, np.float32)
    t = np.zeros((len(samples.rows), m), bool)
    for u, (rows, targets) in enumerate(zip(samples.rows, samples.targets, strict=True)):
        x[u, :rows.shape[0]] = rows[:, cols]
        t[u, :rows.shape[0]] = targets
    return x, t


def _user_ndcg(x: np.ndarray, t: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of each user's candidates under weights ``w``."""
    s = np.nan_to_num(x @ w.astype(np.float32), nan=-np.inf)
    k = min(k, s.shape[1])
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
    hits = np.take_along_axis(t, np.take_along_axis(top, order, axis=1), axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(t.sum(axis=1), k) - 1]
    return dcg / ideal


def refine_ndcg(samples: ListwiseSamples, weights: Mapping[str, float], *, k: int = 10,
                rounds: int = 2, deadline: float | None = None,
                starts: Sequence[Mapping[str, float]] = ()) -> dict[str, float]:
    """Coordinate ascent on NDCG@k over the samples' candidates, from ``weights``.

    The softmax loss is a smooth stand-in; this step moves each weight in turn wherever
    the measure itself improves (Metzler and Croft's coordinate ascent), so the ranking
    is tuned for what is reported. It starts from whichever of ``weights`` and
    ``starts`` (e.g. the baselines' weights) measures best, so it never ends below the
    best of them on these users. A step is taken only where it helps both halves of the
    users (alternate ones), a cheap guard against fitting the few users a weight happens
    to suit. Stops early at ``deadline`` (``time.perf_counter``).
    """
    import time

    names = list(weights)
    if not samples.rows or not names:
        return dict(weights)
    x, t = _padded(samples, [samples.names.index(n) for n in names])
    halves = np.arange(x.shape[0]) % 2 == 0

    def measure(w: np.ndarray) -> tuple[float, float, float]:
        per_user = _user_ndcg(x, t, w, k)
        return (float(per_user.mean()), float(per_user[halves].mean()),
                float(per_user[~halves].mean()) if (~halves).any() else 0.0)

    best, w = (-1.0, -1.0, -1.0), np.zeros(len(names))
    for start in (weights, *starts):
        trial = np.array([float(start.get(n, 0.0)) if n in SIGNED else
                          max(float(start.get(n, 0.0)), 0.0) for n in names], np.float64)
        value = measure(trial)
        if value[0] > best[0]:
            best, w = value, trial
    for _ in range(rounds):
        improved = False
        for j in range(len(names)):
            if deadline is not None and time.perf_counter() > deadline:
                return dict(zip(names, map(float, w), strict=True))
            scale = max(abs(w[j]), 0.25)
            for step in (-1.0, -0.5, -0.2, 0.2, 0.5, 1.0):
                trial = w.copy()
                trial[j] += step * scale
                if names[j] not in SIGNED:
                    trial[j] = max(trial[j], 0.0)
                value = measure(trial)
                # A step must help both halves of the users: one that helps only some
                # is fitting those users, and measures worse on the next ones.
                if (value[0] > best[0] + 1e-6 and value[1] >= best[1] - 1e-9
                        and value[2] >= best[2] - 1e-9):
                    best, w, improved = value, trial, True
        if not improved:
            break
    return dict(zip(names, map(float, w), strict=True))
