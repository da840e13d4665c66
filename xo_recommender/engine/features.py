"""Per-business features of one request: what the learned ranking weighs.

Each feature is a dense vector over item indices, on a scale comparable across users
(scores that have no absolute meaning — collaborative, content profile, interest match —
are divided by their largest value among the candidates; the rest are in [0, 1] by
construction). Distance enters through several decays of different reach, so the
ranking learns the response to distance that the site's users show instead of a fixed
one. Features are grouped by the *reason* they stand for, so the contribution of each
group to a result's score says why it was recommended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "COLD_FEATURES",
    "DISTANCE_SCALES",
    "FEATURES",
    "HISTORY_FEATURES",
    "REASON_GROUP",
    "compute",
]

#: Reach of each distance decay, in km (``exp(-d / scale)``).
DISTANCE_SCALES: dict[str, float] = {
    "near_1km": 1.0, "near_3km": 3.0, "near_10km": 10.0, "near_30km": 30.0,
}

#: Beyond this, distance no longer tells places apart (another city is just far).
FAR_KM = 50.0

#: Features that need the user's history; a user without one has them all at zero.
HISTORY_FEATURES: tuple[str, ...] = (
    "collaborative", "profile", "category", "category_match", "category_count",
    "category_lift", "unstated_lift", "usual_reach", "seen",
)

#: Features a user without history still has.
COLD_FEATURES: tuple[str, ...] = (
    "interest", "interest_category", "interest_tag", *DISTANCE_SCALES, "nearness",
    "log_nearness", "popularity", "trend", "hosted", "rating", "popular_nearby", "prior",
)

FEATURES: tuple[str, ...] = HISTORY_FEATURES + COLD_FEATURES

#: Which reason a feature's contribution stands for (``None``: never a reason).
REASON_GROUP: dict[str, str | None] = {
    "collaborative": "collaborative", "profile": "profile", "category": "category",
    "category_match": "category", "category_count": "category",
    "category_lift": "category",
    "unstated_lift": "category", "usual_reach": "proximity", "seen": None, "interest": "interest",
    "interest_category": "interest", "interest_tag": "interest",
    **{name: "proximity" for name in DISTANCE_SCALES},
    "nearness": "proximity", "log_nearness": "proximity",
    "popularity": "popularity", "trend": "trending", "hosted": "popularity",
    "rating": "rating", "popular_nearby": "popularity", "prior": "popularity",
}


def _max_normalised(scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    s = np.fmax(np.asarray(scores, dtype=np.float32).ravel(), np.float32(0.0))
    np.minimum(s, np.finfo(np.float32).max, out=s)
    top = float(s[mask].max()) if mask is not None and mask.any() else float(s.max(initial=0))
    if top <= 0:
        return np.zeros_like(s)
    return np.minimum(s / np.float32(top), np.float32(1.0))


def category_affinity(categories: sp.csr_matrix, row: sp.csr_matrix) -> np.ndarray:
    """Share of the user's (weighted) history in each business's categories, in [0, 1]."""
    per_category = np.asarray((row @ categories).todense(), dtype=np.float64).ravel()
    total = per_category.sum()
    if total <= 0:
        return np.zeros(categories.shape[0], np.float32)
    share = per_category / total
    return np.minimum(categories @ share, 1.0).astype(np.float32)


def category_count(categories: sp.csr_matrix, row: sp.csr_matrix, cap: int = 4
                   ) -> np.ndarray:
    """How many of the user's businesses share a business's most visited category, /cap."""
    per_category = np.asarray(categories[row.indices].sum(axis=0), np.float32).ravel()
    if not per_category.any():
        return np.zeros(categories.shape[0], np.float32)
    m = categories.multiply(per_category[None, :]).tocsr()
    best = np.asarray(m.max(axis=1).todense(), np.float32).ravel()
    return (best >= 2).astype(np.float32)


def usual_reach(distances: np.ndarray, row: sp.csr_matrix) -> np.ndarray:
    """Distance measured in this user's own usual distance: ``exp(-d / median)``.

    Some people cross town for a place, others stay on their block; the median distance
    of the places they went to says which, and scales the decay to them.
    """
    d_hist = distances[row.indices]
    d_hist = d_hist[np.isfinite(d_hist)]
    if not d_hist.size:
        return np.zeros(distances.shape[0], np.float32)
    scale = np.float32(max(float(np.median(d_hist)), 0.25))
    return np.exp(-distances / scale).astype(np.float32)


def _stated_columns(model, interests: Sequence[str]) -> np.ndarray:
    from xo_recommender.engine.content import normalise_term

    keys = {normalise_term(t) for t in interests or ()}
    return np.array(sorted(model._category_column[k] for k in keys
                           if k in model._category_column), dtype=np.int64)


def category_lift(categories: sp.csr_matrix, row: sp.csr_matrix, active: np.ndarray,
                  reach: np.ndarray | None, stated: np.ndarray | None = None) -> np.ndarray:
    """How much more the user goes to a business's categories than chance would say.

    Chance is the categories' share among the businesses within the user's reach
    (weighted by a decay of distance from home when known, else the whole catalogue):
    a taste for a category shows as a lift, however common the category is around them.
    Returned as ``log(lift)`` clipped to [0, 4], divided by 4.
    """
    visited = categories[row.indices]
    if stated is not None and stated.size:
        # Only the visits the stated interests do not explain, and not those categories:
        # what is left is a taste the user never named.
        explained = np.asarray(visited[:, stated].sum(axis=1)).ravel() > 0
        visited = visited[~explained]
    n_hist = visited.shape[0]
    if not n_hist:
        return np.zeros(categories.shape[0], np.float32)
    hist = np.asarray(visited.sum(axis=0), np.float64).ravel()
    w = np.asarray(active, np.float64) if reach is None else reach * active
    total = w.sum()
    if total <= 0:
        return np.zeros(categories.shape[0], np.float32)
    base = np.asarray(categories.T @ w, np.float64).ravel() / total
    lift = np.log((hist + 1.0) / (n_hist * base + 1.0))
    if stated is not None and stated.size:
        lift[stated] = 0.0
    per_item = categories.multiply(np.clip(lift, 0.0, 4.0)[None, :]).tocsr()
    return (np.asarray(per_item.max(axis=1).todense(), np.float32).ravel() / np.float32(4.0))


def compute(
    model,
    row: sp.csr_matrix,
    *,
    interests: Sequence[str] = (),
    point: tuple[float, float] | None = None,
    mask: np.ndarray | None = None,
    needed: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """The features of every business for one user (only ``needed`` ones, if given).

    ``model`` is a fitted ``Recommender`` (its collaborative and content parts, category
    matrix, locations and item signals); ``row`` the user's weighted history row;
    ``mask`` the candidates, over which relative scores are normalised.
    """
    want = set(FEATURES if needed is None else needed)
    n = model.n_items
    out: dict[str, np.ndarray] = {}
    has_history = row.nnz > 0
    if has_history:
        if "collaborative" in want:
            out["collaborative"] = _max_normalised(model.collaborative.score(row), mask)
        if "profile" in want:
            out["profile"] = _max_normalised(model.content.profile_scores(row), mask)
        if want & {"category", "category_match", "category_count"}:
            affinity = category_affinity(model.categories, row)
            out["category"] = np.sqrt(affinity)
            out["category_match"] = (affinity > 0).astype(np.float32)
            out["category_count"] = category_count(model.categories, row)
        if "seen" in want:
            seen = np.zeros(n, np.float32)
            seen[row.indices] = 1.0
            out["seen"] = seen
    if interests and "interest" in want:
        out["interest"] = _max_normalised(model.content.interest_scores(interests), mask)
    if interests and want & {"interest_category", "interest_tag"}:
        out.update(_interest_matches(model, interests))
    if has_history and want & {"category_lift", "unstated_lift"}:
        reach = None
        if point is not None:
            d = model.locations.distances_km(*point)
            reach = np.exp(-np.where(np.isfinite(d), d, np.inf) / 3.0)
        out["category_lift"] = category_lift(model.categories, row, model.active, reach)
        stated = _stated_columns(model, interests)
        if stated.size:
            out["unstated_lift"] = category_lift(model.categories, row, model.active, reach,
                                                 stated=stated)
        else:
            out["unstated_lift"] = out["category_lift"]
    near = None
    if point is not None and (want & (set(DISTANCE_SCALES) | {"popular_nearby", "nearness",
                                                              "log_nearness"})):
        d = model.locations.distances_km(*point).astype(np.float32)
        d = np.where(np.isfinite(d), d, np.float32(np.inf))
        if has_history and "usual_reach" in want:
            out["usual_reach"] = usual_reach(d, row)
        close = np.minimum(d, np.float32(FAR_KM))
        out["nearness"] = np.float32(1.0) - close / np.float32(FAR_KM)
        out["log_nearness"] = np.float32(1.0) - np.log1p(close) / np.float32(np.log1p(FAR_KM))
        for name, scale in DISTANCE_SCALES.items():
            if name in want or (name == "near_3km" and "popular_nearby" in want):
                out[name] = np.exp(-d / np.float32(scale))
        near = out.get("near_3km")
    signals: Mapping[str, np.ndarray] = model.signals
    for name in ("popularity", "trend", "hosted", "rating", "prior"):
        if name in want:
            out[name] = signals[name]
    if "popular_nearby" in want and near is not None:
        out["popular_nearby"] = signals["popularity"] * near
    return {name: v for name, v in out.items() if name in want}


def _interest_matches(model, interests: Sequence[str]) -> dict[str, np.ndarray]:
    """How many of a business's categories, and of its other terms, the user named."""
    from xo_recommender.engine.content import normalise_term

    keys = {normalise_term(t) for t in interests} - {""}
    cat_cols = [model._category_column[k] for k in keys if k in model._category_column]
    n = model.n_items
    cats = np.zeros(n, np.float32)
    if cat_cols:
        cats = np.asarray(model.categories[:, cat_cols].sum(axis=1), np.float32).ravel()
    term_cols = [model.content.vocabulary[k] for k in keys
                 if k in model.content.vocabulary and k not in model._category_column]
    tags = np.zeros(n, np.float32)
    if term_cols:
        tags = np.asarray((model.content.item_terms[:, term_cols] > 0).sum(axis=1),
                          np.float32).ravel()
    return {"interest_category": (cats > 0).astype(np.float32),
            "interest_tag": np.minimum(tags, 2.0) / np.float32(2.0)}


def score(features: Mapping[str, np.ndarray], weights: Mapping[str, float],
          n_items: int) -> np.ndarray:
    """``Σ weight × feature`` (float32); a feature that is absent counts as zero."""
    total = np.zeros(n_items, np.float32)
    for name, w in weights.items():
        v = features.get(name)
        if v is not None and w:
            total += np.float32(w) * v
    return total
