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

from xo_recommender.engine.content import normalise_term

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

#: Beyond this, distance no longer tells places apart (another city is just far), and
#: a business is out of reach: a page lists those within it first (``within_reach_first``).
FAR_KM = 50.0

#: Features that need the user's history; a user without one has them all at zero.
HISTORY_FEATURES: tuple[str, ...] = (
    "collaborative", "profile", "category", "category_match", "category_count",
    "category_lift", "unstated_lift", "unstated_taste", "any_taste", "usual_reach",
    "usual_nearness", "personal_nearness", "seen",
)

#: Features a user without history still has.
COLD_FEATURES: tuple[str, ...] = (
    "interest", "interest_category", "interest_tag", *DISTANCE_SCALES, "nearness",
    "log_nearness", "popularity", "trend", "hosted", "rating", "popular_nearby", "prior",
)

FEATURES: tuple[str, ...] = HISTORY_FEATURES + COLD_FEATURES

#: Features computed from the distance to the user's home.
_USE_DISTANCE = frozenset({*DISTANCE_SCALES, "nearness", "log_nearness", "popular_nearby",
                           "usual_reach", "usual_nearness", "personal_nearness",
                           "category_lift",
                           "unstated_lift", "unstated_taste", "any_taste"})

#: Which reason a feature's contribution stands for (``None``: never a reason).
REASON_GROUP: dict[str, str | None] = {
    "collaborative": "collaborative", "profile": "profile", "category": "category",
    "category_match": "category", "category_count": "category",
    "category_lift": "category",
    "unstated_lift": "category", "unstated_taste": "category", "any_taste": "category",
    "usual_reach": "proximity",
    "usual_nearness": "proximity", "personal_nearness": "proximity",
    "seen": None, "interest": "interest",
    "interest_category": "interest", "interest_tag": "interest",
    **{name: "proximity" for name in DISTANCE_SCALES},
    "nearness": "proximity", "log_nearness": "proximity",
    "popularity": "popularity", "trend": "trending", "hosted": "popularity",
    "rating": "rating", "popular_nearby": "popularity", "prior": "popularity",
}


#: A feature whose contribution is told by another reason where a second feature is
#: positive: ``any_taste`` lifts a business that matches a stated interest as that
#: interest ("matches your interest in …"), and one that matches a taste read from the
#: history as that category ("you often go to …").
REASON_WHERE: dict[str, tuple[str, str]] = {"any_taste": ("interest_category", "interest")}


def _max_normalised(scores: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    s = np.fmax(np.asarray(scores, dtype=np.float32).ravel(), np.float32(0.0))
    np.minimum(s, np.finfo(np.float32).max, out=s)
    if mask is None:
        top = float(s.max(initial=0))
    else:  # the largest candidate (s >= 0, so the initial 0 changes nothing); none: all
        top = float(np.max(s, where=mask, initial=0))
        if top <= 0 and not mask.any():
            top = float(s.max(initial=0))
    if top <= 0:
        return np.zeros_like(s)
    np.divide(s, np.float32(top), out=s)
    return np.minimum(s, np.float32(1.0), out=s)


class PerSet:
    """A feature that depends on a business's category set only: one value per distinct
    set (``category_sets``), read through each business's set where it is needed. The
    score adds it without a pass per feature over every business (``score``)."""

    __slots__ = ("of_item", "values")

    def __init__(self, values: np.ndarray, of_item: np.ndarray) -> None:
        self.values = np.asarray(values, np.float32)
        self.of_item = of_item

    def dense(self) -> np.ndarray:
        return self.values[self.of_item]

    def at(self, rows: np.ndarray) -> np.ndarray:
        return self.values[self.of_item[rows]]


class Sparse:
    """A feature that is zero but at a few businesses (``index``: sorted, distinct)."""

    __slots__ = ("index", "n", "values")

    def __init__(self, n: int, index: np.ndarray, values: np.ndarray) -> None:
        self.n = n
        self.index = np.asarray(index, np.intp)
        self.values = np.asarray(values, np.float32)

    def dense(self) -> np.ndarray:
        out = np.zeros(self.n, np.float32)
        out[self.index] = self.values
        return out

    def at(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.intp)
        pos = np.minimum(np.searchsorted(self.index, rows), max(self.index.size - 1, 0))
        hit = self.index[pos] == rows if self.index.size else np.zeros(rows.shape, bool)
        return np.where(hit, self.values[pos] if self.index.size else np.float32(0.0),
                        np.float32(0.0)).astype(np.float32)


def dense(value) -> np.ndarray:
    """A feature's values for every business, whatever its form."""
    return value.dense() if isinstance(value, PerSet | Sparse) else value


def history_category_weights(categories: sp.csr_matrix, row: sp.csr_matrix) -> np.ndarray:
    """The user's history weight in each category: ``row @ categories`` for the binary
    category matrix, accumulated in float32 in the same order (history item by item),
    from the slot table instead of a sparse product."""
    slots = category_slots(categories)[:, row.indices].T  # history item × slot
    weights = np.broadcast_to(np.asarray(row.data, np.float32)[:, None], slots.shape)
    keep = slots >= 0
    out = np.zeros(categories.shape[1], np.float32)
    np.add.at(out, slots[keep], weights[keep])
    return out


def category_shares(categories: sp.csr_matrix, row: sp.csr_matrix) -> np.ndarray | None:
    """Share of the user's (weighted) history in each category (None: no history)."""
    per_category = history_category_weights(categories, row).astype(np.float64)
    total = per_category.sum()
    return None if total <= 0 else per_category / total


def category_affinity(categories: sp.csr_matrix, row: sp.csr_matrix) -> np.ndarray:
    """Share of the user's (weighted) history in each business's categories, in [0, 1]."""
    return category_affinity_by_set(categories, row).dense()


def category_affinity_by_set(categories: sp.csr_matrix, row: sp.csr_matrix) -> PerSet:
    """``category_affinity`` per category set."""
    share = category_shares(categories, row)
    of_item = category_sets(categories)[1]
    if share is None:
        return PerSet(np.zeros(category_sets(categories)[0].shape[1], np.float32), of_item)
    return PerSet(np.minimum(_per_set(categories, share, np.add), np.float32(1.0)), of_item)


def category_slots(categories: sp.csr_matrix) -> np.ndarray:
    """Each business's category columns as a padded ``k × n`` table (-1 pads).

    A business has few categories, so per-request sums and maxima over them are one
    gather from this table: a request at 50,000 businesses cannot afford sparse
    multiplies. Kept on the matrix object, built once per loaded model.
    """
    slots = getattr(categories, "_xo_slots", None)
    if slots is None:
        counts = np.diff(categories.indptr)
        width = max(int(counts.max(initial=0)), 1)
        slots = np.full((width, categories.shape[0]), -1, np.intp)  # one row per slot
        rows = np.repeat(np.arange(categories.shape[0]), counts)
        offsets = np.arange(categories.nnz) - np.repeat(categories.indptr[:-1], counts)
        slots[offsets, rows] = categories.indices
        categories._xo_slots = slots
    return slots


def category_sets(categories: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The distinct category sets (as a padded ``k × m`` slot table) and each business's.

    Businesses share a few thousand category sets among tens of thousands of them, so a
    per-business sum or maximum over categories is computed once per set and then
    gathered: the same arithmetic on the same numbers, a fraction of the passes. Built
    once per loaded model.
    """
    sets = getattr(categories, "_xo_sets", None)
    if sets is None:
        slots = category_slots(categories)
        unique, inverse = np.unique(slots, axis=1, return_inverse=True)
        # the index native: a gather with a smaller one converts it on every request
        sets = (np.ascontiguousarray(unique), inverse.ravel().astype(np.intp))
        categories._xo_sets = sets
    return sets


def _per_set(categories: sp.csr_matrix, per_category: np.ndarray, combine) -> np.ndarray:
    extended = np.append(np.asarray(per_category, np.float32), np.float32(0.0))
    slots = category_sets(categories)[0]
    out = extended[slots[0]]
    for slot in slots[1:]:  # a handful of gathers over the distinct sets
        combine(out, extended[slot], out=out)
    return out


def _per_item(categories: sp.csr_matrix, per_category: np.ndarray, combine) -> np.ndarray:
    return _per_set(categories, per_category, combine)[category_sets(categories)[1]]


def per_set_max(categories: sp.csr_matrix, per_category: np.ndarray) -> PerSet:
    """``per_item_max`` per category set."""
    return PerSet(np.maximum(_per_set(categories, per_category, np.maximum), np.float32(0.0)),
                  category_sets(categories)[1])


def per_item_max(categories: sp.csr_matrix, per_category: np.ndarray) -> np.ndarray:
    """For each business, the largest of ``per_category`` (>= 0) over its categories."""
    return per_set_max(categories, per_category).dense()


def per_item_sum(categories: sp.csr_matrix, per_category: np.ndarray) -> np.ndarray:
    """For each business, the sum of ``per_category`` over its categories."""
    return _per_item(categories, per_category, np.add)


def visited_categories(categories: sp.csr_matrix, items: np.ndarray,
                       skip: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """How many of ``items`` (distinct businesses) are in each category, and how many
    items were counted; ``skip``: leave out the items in any of these categories.

    The column sums of ``categories[items]`` (a binary matrix, so the counts are exact),
    from the slot table instead of a sparse row slice.
    """
    cols = category_slots(categories)[:, np.asarray(items, np.intp)]
    if skip is not None and skip.size:
        skipped = np.zeros(categories.shape[1] + 1, dtype=bool)  # the last: the -1 pads
        skipped[np.asarray(skip, np.intp)] = True
        cols = cols[:, ~skipped[cols].any(axis=0)]
    n = int(cols.shape[1])
    cols = cols[cols >= 0]
    return np.bincount(cols, minlength=categories.shape[1]).astype(np.float64), n


def category_count(categories: sp.csr_matrix, row: sp.csr_matrix) -> np.ndarray:
    """1 where the user went to two or more businesses of one of this business's
    categories."""
    return category_count_by_set(categories, row).dense()


def category_count_by_set(categories: sp.csr_matrix, row: sp.csr_matrix) -> PerSet:
    """``category_count`` per category set."""
    per_category = visited_categories(categories, row.indices)[0].astype(np.float32)
    by_set = per_set_max(categories, per_category)
    return PerSet((by_set.values >= 2).astype(np.float32), by_set.of_item)


def usual_distance(history_distances: np.ndarray) -> float | None:
    """The median distance of the places a user went to (at least 0.25 km; None: none
    known): the unit ``usual_reach`` and ``usual_nearness`` measure distance in."""
    d = history_distances[np.isfinite(history_distances)]
    return max(float(_median(d)), 0.25) if d.size else None


def _median(values: np.ndarray):
    """``np.median`` of a few finite floats without its general machinery: the middle
    value, or the mean of the middle two (their sum halved in the array's precision)."""
    if values.dtype not in (np.float32, np.float64):
        return np.median(values)
    ordered = np.sort(values)
    k = ordered.size // 2
    if ordered.size % 2:
        return ordered[k]
    return (ordered[k - 1] + ordered[k]) / values.dtype.type(2)


def usual_reach(distances: np.ndarray, row: sp.csr_matrix, *,
                history_distances: np.ndarray | None = None) -> np.ndarray:
    """Distance measured in this user's own usual distance: ``exp(-d / median)``.

    Some people cross town for a place, others stay on their block; the median distance
    of the places they went to says which, and scales the decay to them.
    ``history_distances``: those places' distances when ``distances`` is over other
    businesses (the ones a model does not know yet).
    """
    usual = usual_distance(distances[row.indices] if history_distances is None
                           else history_distances)
    if usual is None:
        return np.zeros(distances.shape[0], np.float32)
    return np.exp(-distances / np.float32(usual)).astype(np.float32)


#: ``usual_nearness`` reaches zero at this many times the user's median distance.
USUAL_SPAN = 10.0


def usual_nearness(distances: np.ndarray, row: sp.csr_matrix, *,
                   history_distances: np.ndarray | None = None) -> np.ndarray:
    """Closeness on a straight line in this user's own unit of distance.

    ``usual_reach`` decays; this one falls linearly, ``1 - d / (USUAL_SPAN × median)``,
    so a weight on it is a per-user "cost per km" (people who go far pay less for each
    km): with the decays, the ranking can learn the shape of the response to distance.
    """
    usual = usual_distance(distances[row.indices] if history_distances is None
                           else history_distances)
    if usual is None:
        return np.zeros(distances.shape[0], np.float32)
    span = np.float32(USUAL_SPAN * usual)
    return np.maximum(np.float32(1.0) - distances / span, np.float32(0.0))


#: The distance scales (km) ``reach_rate`` weighs, on a log grid: from a walk round
#: the block to a drive across a region.
REACH_SCALES = np.geomspace(0.25, 40.0, 16)
#: ``reach_rate`` counts the businesses on offer in bins this wide (km), up to this far.
REACH_BIN_KM = 0.1
REACH_MAX_KM = 120.0
_REACH_BINS = int(round(REACH_MAX_KM / REACH_BIN_KM))
#: At most about this many businesses are counted (every k-th of a larger catalogue): a
#: sum over tens of thousands is known well enough from a fraction, and a common factor
#: on it changes nothing in the posterior.
REACH_SAMPLE = 12_500
#: ``exp(-d / s)`` at each bin's centre, per scale (scales × bins), made once.
_REACH_KERNEL = np.exp(-np.outer(1.0 / REACH_SCALES,
                                 (np.arange(_REACH_BINS) + 0.5) * REACH_BIN_KM))


def reach_rate(distances: np.ndarray, history_distances: np.ndarray,
               inactive: np.ndarray | None = None) -> float | None:
    """How much a km costs this user, ``E[1/s]``: the posterior mean given where they went.

    A choice model: a user whose distance scale is ``s`` picks a business with
    probability ``exp(-d/s) / Σ exp(-d'/s)`` over the businesses on offer (all but
    ``inactive``, indices). The likelihood of the distances of the places they went to,
    over a log grid of scales (``REACH_SCALES``, a flat prior on it), gives the
    posterior. Unlike the median distance (``usual_distance``), it knows what was on
    offer: far choices by a user on the edge of town, where everything is far, say
    little; by one in the centre, a lot. The sums over businesses come from a histogram
    of their distances (``REACH_BIN_KM``; of every k-th business above ``REACH_SAMPLE``),
    then a few thousand operations for all the scales. None: no place of the history
    has a known distance.
    """
    dh = np.asarray(history_distances, np.float64)
    dh = dh[np.isfinite(dh)]
    if not dh.size:
        return None
    step = max(1, -(-int(distances.shape[0]) // REACH_SAMPLE))
    binned = np.multiply(distances[::step], np.float32(1.0 / REACH_BIN_KM), dtype=np.float32)
    np.fmin(binned, np.float32(_REACH_BINS), out=binned)  # NaN, inf, too far: the last
    binned = binned.astype(np.intp)
    if inactive is not None and len(inactive):
        closed = np.asarray(inactive, np.intp)
        binned[closed[closed % step == 0] // step] = _REACH_BINS
    on_offer = np.bincount(binned, minlength=_REACH_BINS + 1)[:_REACH_BINS]
    rates = 1.0 / REACH_SCALES
    z = _REACH_KERNEL @ on_offer
    log_lik = -rates * float(dh.sum()) - dh.size * np.log(np.maximum(z, 1e-300))
    posterior = np.exp(log_lik - log_lik.max())
    return float(posterior @ rates / posterior.sum())


def inactive_items(model) -> np.ndarray:
    """The indices of the businesses that are not active (made once per loaded model)."""
    cached = getattr(model, "_xo_inactive", None)
    if cached is None:
        cached = np.flatnonzero(~np.asarray(model.active, bool))
        model._xo_inactive = cached
    return cached


def personal_nearness(distances: np.ndarray, rate: float | None) -> np.ndarray:
    """Closeness on a straight line in the user's expected unit of distance
    (``reach_rate``): ``1 - d × E[1/s] / USUAL_SPAN``, at least 0 (zeros: no rate).

    Like ``usual_nearness``, a weight on it is a per-user cost per km; the rate comes
    from a choice model instead of the median distance.
    """
    if not rate:
        return np.zeros(distances.shape[0], np.float32)
    out = distances * np.float32(-rate / USUAL_SPAN)
    out += np.float32(1.0)
    return np.maximum(out, np.float32(0.0), out=out)


def _stated_columns(model, interests: Sequence[str]) -> np.ndarray:
    keys = {normalise_term(t) for t in interests or ()}
    return np.array(sorted(model._category_column[k] for k in keys
                           if k in model._category_column), dtype=np.int64)


def category_base(categories: sp.csr_matrix, active: np.ndarray,
                  reach: np.ndarray | None) -> np.ndarray | None:
    """Each category's share among the businesses within reach (None: nothing is)."""
    w = np.asarray(active, np.float32) if reach is None else reach * active
    total = float(w.sum())
    if total <= 0:
        return None
    # categories.T @ w, accumulated in float32 in the same (business) order, without
    # building the transpose on every request
    cached = getattr(categories, "_xo_rows", None)
    if cached is None:
        rows = np.repeat(np.arange(categories.shape[0]), np.diff(categories.indptr))
        binary = bool((categories.data == 1).all())  # x * 1 is x: the product is skipped
        cached = (rows, categories.indices.astype(np.intp), binary)
        categories._xo_rows = cached
    rows, columns, binary = cached
    per_category = np.zeros(categories.shape[1], np.float32)
    np.add.at(per_category, columns, w[rows] if binary else categories.data * w[rows])
    return per_category.astype(np.float64) / total


def category_lift(categories: sp.csr_matrix, row: sp.csr_matrix, base: np.ndarray | None,
                  stated: np.ndarray | None = None) -> np.ndarray:
    """Per business, the largest of ``category_lift_by_category`` over its categories."""
    return per_item_max(categories, category_lift_by_category(categories, row, base, stated))


def category_lift_by_category(categories: sp.csr_matrix, row: sp.csr_matrix,
                              base: np.ndarray | None,
                              stated: np.ndarray | None = None) -> np.ndarray:
    """How much more the user goes to each category than chance would say.

    Chance is the categories' share among the businesses within the user's reach
    (weighted by a decay of distance from home when known, else the whole catalogue):
    a taste for a category shows as a lift, however common the category is around them.
    Returned as ``log(lift)`` clipped to [0, 4], divided by 4.
    """
    # Only the visits the stated interests do not explain, and not those categories:
    # what is left is a taste the user never named.
    hist, n_hist = visited_categories(
        categories, row.indices, stated if stated is not None and stated.size else None)
    if not n_hist or base is None:
        return np.zeros(categories.shape[1], np.float32)
    lift = np.log((hist + 1.0) / (n_hist * base + 1.0))
    if stated is not None and stated.size:
        lift[stated] = 0.0
    return (np.clip(lift, 0.0, 4.0) / 4.0).astype(np.float32)


#: Prior belief that a user has a taste they never stated (before seeing their history).
UNSTATED_PRIOR = 0.5
#: Bounds on how strongly a taste draws a user (a multiple of chance), when it is
#: estimated from how strongly their *stated* tastes draw them.
TASTE_STRENGTH = (2.0, 50.0)
_DEFAULT_STRENGTH = 10.0


def unstated_taste(categories: sp.csr_matrix, row: sp.csr_matrix, base: np.ndarray | None,
                   stated: np.ndarray) -> np.ndarray:
    """Per business, the largest of ``unstated_taste_by_category`` over its categories."""
    return per_item_max(categories, unstated_taste_by_category(categories, row, base, stated))


def unstated_taste_by_category(categories: sp.csr_matrix, row: sp.csr_matrix,
                               base: np.ndarray | None, stated: np.ndarray) -> np.ndarray:
    """The probability that each category is a taste the user never stated.

    A Bayesian reading of the visits the stated interests do not explain: either the
    user has no unstated taste (prior ``UNSTATED_PRIOR``), or one category ``c`` draws
    them ``e`` times more than chance (``base``: the categories' share within reach), so
    ``k_c`` of their ``N`` unexplained visits in ``c`` has likelihood ratio
    ``e^k_c / (1 + b_c (e - 1))^N``. ``e`` is how strongly the user's stated tastes draw
    them (their lift over chance), so the evidence a visit carries scales with how much
    tastes matter on this site; unlike a raw lift, two visits to a rare category and two
    to a common one weigh differently, and one stray visit weighs little.
    """
    if base is None or row.nnz == 0:
        return np.zeros(categories.shape[1], np.float32)
    b = np.clip(np.asarray(base, np.float64), 1e-6, 1.0)
    strength = _DEFAULT_STRENGTH
    skip = stated if stated.size else None
    k, n = visited_categories(categories, row.indices, skip)  # the unexplained visits
    if skip is not None:
        total = int(row.indices.size)
        share_stated = min(float(b[stated].sum()), 1.0)
        if share_stated < 1.0:  # the odds of a stated visit over the odds by chance
            p = (float(total - n) + 0.5) / (total + 1.0)
            odds = (p / (1.0 - p)) / (share_stated / (1.0 - share_stated))
            strength = float(np.clip(odds, *TASTE_STRENGTH))
    if not n:
        return np.zeros(categories.shape[1], np.float32)
    log_e = np.log(strength)
    llr = k * log_e - n * np.log1p(b * (strength - 1.0))
    prior = b.copy()
    if stated.size:
        prior[stated] = 0.0
    prior *= (1.0 - UNSTATED_PRIOR) / max(float(prior.sum()), 1e-12)
    with np.errstate(divide="ignore"):
        log_post = np.log(prior) + llr
    top = max(float(log_post.max(initial=-np.inf)), float(np.log(UNSTATED_PRIOR)))
    post = np.exp(log_post - top)
    post /= post.sum() + np.exp(np.log(UNSTATED_PRIOR) - top)
    return post.astype(np.float32)


def any_taste(unstated: PerSet | np.ndarray,
              stated: PerSet | np.ndarray | None) -> PerSet | np.ndarray:
    """The probability that a business matches at least one of the user's tastes: 1 where
    it is in a category they named, else the probability that it is in their unstated
    one (``unstated_taste``; a user has at most one, so the events are exclusive).

    Why beside the two it is made of: a place that matches a taste draws a person about
    as much whether it matches one of their tastes or two, and a linear ranking that
    adds the two features counts a place matching both twice. With this one it can
    weigh "matches a taste" once (the learned weights of the other two then fall to
    about zero on ``seed_demo``'s worlds). Both ``PerSet`` over the same sets (a request),
    or both arrays over businesses (the newcomers, ``engine.newcomers``).
    """
    if stated is None:
        return unstated
    if isinstance(unstated, PerSet):
        return PerSet(np.maximum(unstated.values, stated.values), unstated.of_item)
    return np.maximum(unstated, stated)


def compute(
    model,
    row: sp.csr_matrix,
    *,
    interests: Sequence[str] = (),
    point: tuple[float, float] | None = None,
    mask: np.ndarray | None = None,
    needed: Iterable[str] | None = None,
    compact: bool = False,
    distances: np.ndarray | None = None,
    within: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The features of every business for one user (only ``needed`` ones, if given).

    ``model`` is a fitted ``Recommender`` (its collaborative and content parts, category
    matrix, locations and item signals); ``row`` the user's weighted history row;
    ``mask`` the candidates, over which relative scores are normalised. ``compact``:
    the features of a category set as ``PerSet`` and the few-business ones as
    ``Sparse`` (what ``score`` and ``contributions`` read; the same values), else
    every feature as an array over all businesses. ``distances``: the businesses' km
    from ``point``, when the caller has them already. ``within`` (with ``compact``;
    sorted indices): only these businesses will be scored, so the features made from
    each business's distance are computed for them alone (as ``Sparse`` over
    ``within``; the same values there, nothing elsewhere).
    """
    want = set(FEATURES if needed is None else needed)
    n = model.n_items
    out: dict[str, np.ndarray] = {}
    has_history = row.nnz > 0
    if point is None or not want & _USE_DISTANCE:
        distances = None  # from home, computed at most once per request
    else:
        raw = (model.locations.distances_km(*point) if distances is None
               else distances).astype(np.float32, copy=False)
        located = model.locations.has_location.all()  # else unknown ones are NaN: inf
        distances = raw if located else np.where(np.isfinite(raw), raw, np.float32(np.inf))
    if has_history:
        if "collaborative" in want:
            out["collaborative"] = _max_normalised(model.collaborative.score(row), mask)
        if "profile" in want:
            out["profile"] = _max_normalised(model.content.profile_scores(row), mask)
        if want & {"category", "category_match"}:
            affinity = category_affinity_by_set(model.categories, row)
            out["category"] = PerSet(np.sqrt(affinity.values), affinity.of_item)
            out["category_match"] = PerSet((affinity.values > 0).astype(np.float32),
                                           affinity.of_item)
        if "category_count" in want:
            out["category_count"] = category_count_by_set(model.categories, row)
        if "seen" in want:
            seen = np.unique(row.indices)
            out["seen"] = Sparse(n, seen, np.ones(seen.size, np.float32))
    if interests and "interest" in want:
        out["interest"] = _max_normalised(model.content.interest_scores(interests), mask)
    if "any_taste" in want and has_history:
        want.add("interest_category")  # the reason its contribution is told by
    if interests and want & {"interest_category", "interest_tag"}:
        out.update(_interest_matches(model, interests, compact=True))
    if has_history and want & {"category_lift", "unstated_lift", "unstated_taste",
                               "any_taste"}:
        reach = None if distances is None else _decay(distances, 3.0)
        base = category_base(model.categories, model.active, reach)
        if "category_lift" in want:
            out["category_lift"] = per_set_max(
                model.categories, category_lift_by_category(model.categories, row, base))
        if "unstated_lift" in want:
            stated = _stated_columns(model, interests)
            out["unstated_lift"] = per_set_max(model.categories, category_lift_by_category(
                model.categories, row, base, stated=stated if stated.size else None))
        if want & {"unstated_taste", "any_taste"}:
            taste = per_set_max(model.categories, unstated_taste_by_category(
                model.categories, row, base, _stated_columns(model, interests)))
            if "unstated_taste" in want:
                out["unstated_taste"] = taste
            if "any_taste" in want:
                out["any_taste"] = any_taste(taste, out.get("interest_category"))
    if distances is not None:
        by_distance: dict[str, np.ndarray] = {}
        here = distances if within is None else distances[within]
        history_distances = distances[row.indices]
        if has_history and "usual_reach" in want:
            by_distance["usual_reach"] = usual_reach(here, row,
                                                     history_distances=history_distances)
        if has_history and "usual_nearness" in want:
            by_distance["usual_nearness"] = usual_nearness(
                here, row, history_distances=history_distances)
        if has_history and "personal_nearness" in want:
            # the rate reads what is on offer everywhere, the feature only where scored
            by_distance["personal_nearness"] = personal_nearness(
                here, reach_rate(distances, history_distances, inactive_items(model)))
        by_distance.update(distance_features(here, want))
        if "popular_nearby" in want:
            near = by_distance.get("near_3km")
            if near is None:
                near = np.exp(-here / np.float32(DISTANCE_SCALES["near_3km"]))
            popularity = model.signals["popularity"]
            by_distance["popular_nearby"] = (popularity if within is None
                                             else popularity[within]) * near
        if within is None:
            out.update(by_distance)
        else:
            out.update((name, Sparse(n, within, v)) for name, v in by_distance.items())
    for name in ("popularity", "trend", "hosted", "rating", "prior"):
        if name in want:
            out[name] = model.signals[name]
    return {name: v if compact else dense(v) for name, v in out.items() if name in want}


def within_reach_first(total: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """``total`` with every business farther than ``FAR_KM`` moved below every business
    within it, keeping the order inside each group (unknown distances count as within).

    The learned weights cannot say this: what a user already knows and what lies in
    another city are both never a discovery in the holdout, so nothing there orders one
    before the other; a café seen once 3 km away is a better suggestion than one 2,000 km
    away, and a café 2,000 km away is no suggestion at all while one nearby is left.
    """
    far = distances > np.float32(FAR_KM)  # NaN (unknown) is not far
    if not far.any() or far.all():
        return total
    # Below the lowest score of all by the whole range: one pass each for the largest
    # and the smallest (a masked reduction over 50,000 costs ten times more), and the
    # order inside each group is kept. ``total`` is finite (the callers guard it).
    shift = np.float32(float(total.max()) - float(total.min()) + 1.0)
    return total - shift * far


def distance_features(distances: np.ndarray, want: Iterable[str]) -> dict[str, np.ndarray]:
    """Linear and log nearness up to ``FAR_KM`` and the decays of ``DISTANCE_SCALES``
    (those in ``want``), from distances in km (``inf`` where unknown)."""
    want = set(want)
    out: dict[str, np.ndarray] = {}
    if want & {"nearness", "log_nearness"}:
        close = np.minimum(distances, np.float32(FAR_KM))
        if "nearness" in want:
            out["nearness"] = np.float32(1.0) - close / np.float32(FAR_KM)
        if "log_nearness" in want:
            out["log_nearness"] = (np.float32(1.0)
                                   - np.log1p(close) / np.float32(np.log1p(FAR_KM)))
    for name, scale in DISTANCE_SCALES.items():
        if name in want:
            out[name] = _decay(distances, scale)
    return out


def _decay(distances: np.ndarray, scale: float) -> np.ndarray:
    """``exp(-d / scale)`` in float32, in one buffer (``-d / s`` is ``d / -s`` exactly)."""
    out = np.divide(distances, np.float32(-scale))
    return np.exp(out, out=out)


def contributions(values: Mapping[str, np.ndarray], weights: Mapping[str, float],
                  rows: np.ndarray | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """Each result's score split by reason group (``REASON_GROUP``): the groups, in the
    weights' order, and a results × groups array of ``weight × feature`` sums
    (``rows``: the results' indices into ``values``; None: every row)."""
    groups: list[str] = []
    for name in weights:
        group = REASON_GROUP.get(name)
        if group is not None and name in values and group not in groups:
            groups.append(group)
    if rows is not None:
        n = rows.shape[0]
    else:
        n = next(iter(values.values())).shape[0] if values else 0
    def at(v):
        if rows is None:
            return dense(v)
        return v.at(rows) if isinstance(v, PerSet | Sparse) else v[rows]

    for name in weights:  # a split feature's second group is a group too
        if name in REASON_WHERE and name in values and REASON_WHERE[name][0] in values:
            other = REASON_WHERE[name][1]
            if other not in groups:
                groups.append(other)
    out = np.zeros((n, len(groups)), np.float32)
    for name, w in weights.items():
        group = REASON_GROUP.get(name)
        if group is not None and name in values:
            term = np.float32(w) * at(values[name])
            where = REASON_WHERE.get(name)
            if where is not None and where[0] in values:
                told = at(values[where[0]]) > 0
                out[:, groups.index(where[1])] += np.where(told, term, np.float32(0.0))
                term = np.where(told, np.float32(0.0), term)
            out[:, groups.index(group)] += term
    return tuple(groups), out


def _term_postings(model) -> sp.csr_matrix:
    """Term × business with 1 where a business has the term (made once per loaded model):
    the businesses of a few named terms are then a few slices, not a pass over all."""
    cached = getattr(model, "_term_postings", None)
    if cached is None:
        terms = model.content.item_terms
        binary = sp.csr_matrix((np.ones(terms.nnz, np.float32), terms.indices, terms.indptr),
                               shape=terms.shape)
        cached = binary.T.tocsr()
        cached.sort_indices()
        model._term_postings = cached
    return cached


def _interest_matches(model, interests: Sequence[str], *, compact: bool = False) -> dict:
    """How many of a business's categories, and of its other terms, the user named
    (``compact``: as ``PerSet`` and ``Sparse``, see ``compute``)."""
    keys = {normalise_term(t) for t in interests} - {""}
    cat_cols = _stated_columns(model, interests)
    n = model.n_items
    mark = np.zeros(model.categories.shape[1], np.float32)
    mark[cat_cols] = 1.0
    cats = PerSet(_per_set(model.categories, mark, np.add), category_sets(model.categories)[1])
    term_cols = [model.content.vocabulary[k] for k in keys
                 if k in model.content.vocabulary and k not in model._category_column]
    hits = np.zeros(0, np.intp)
    if term_cols:
        postings = _term_postings(model)
        hits = np.concatenate([postings.indices[postings.indptr[t]:postings.indptr[t + 1]]
                               for t in term_cols])
    tagged, named = (np.unique(hits, return_counts=True) if hits.size  # terms named
                     else (hits, hits))  # per business
    out = {"interest_category": PerSet((cats.values > 0).astype(np.float32), cats.of_item),
           "interest_tag": Sparse(n, tagged,
                                  np.minimum(named.astype(np.float32), 2.0) / np.float32(2.0))}
    return out if compact else {name: v.dense() for name, v in out.items()}


def score(features: Mapping[str, np.ndarray], weights: Mapping[str, float],
          n_items: int, rows: np.ndarray | None = None) -> np.ndarray:
    """``Σ weight × feature`` (float32); a feature that is absent counts as zero.

    Summed in the weights' order, each business's sum the same sequence of float32
    additions whatever form its features take (``compute``'s ``compact``): the leading
    category-set features are summed per set and read once per business (the same
    additions, a few thousand of them); a ``Sparse`` one is added where it is not zero
    only (adding ``w × 0`` leaves a sum started at +0 unchanged). ``rows`` (sorted
    indices): the scores of those businesses only, each the same sum.
    """
    if rows is not None:
        return _score_at(features, weights, rows)
    total = None  # while None, every business's sum is still a function of its set
    by_set, of_item = None, None
    for name, w in weights.items():
        v = features.get(name)
        if v is None or not w:
            continue
        if isinstance(v, PerSet) and total is None and (of_item is None
                                                        or v.of_item is of_item):
            term = v.values * np.float32(w)
            by_set = np.float32(0.0) + term if by_set is None else by_set + term
            of_item = v.of_item
            continue
        if total is None:
            total = np.zeros(n_items, np.float32) if by_set is None else by_set[of_item]
        if isinstance(v, PerSet):
            total += (v.values * np.float32(w))[v.of_item]
        elif isinstance(v, Sparse):
            total[v.index] += v.values * np.float32(w)
        elif v.dtype == np.float32:
            total += v * np.float32(w)  # the same float32 product
        else:
            total += np.float32(w) * v
    if total is None:
        return np.zeros(n_items, np.float32) if by_set is None else by_set[of_item]
    return total


def _score_at(features: Mapping[str, np.ndarray], weights: Mapping[str, float],
              rows: np.ndarray) -> np.ndarray:
    """``score`` at ``rows`` alone: per business the same float32 additions in the same
    order (a product ``w × 0`` where a ``Sparse`` feature is zero leaves a sum as it
    is, as skipping it does)."""
    total = np.zeros(rows.shape[0], np.float32)
    for name, w in weights.items():
        v = features.get(name)
        if v is None or not w:
            continue
        if isinstance(v, PerSet):
            total += (v.values * np.float32(w))[v.of_item[rows]]
        elif isinstance(v, Sparse):
            total += (v.values if v.index is rows else v.at(rows)) * np.float32(w)
        elif v.dtype == np.float32:
            total += v[rows] * np.float32(w)
        else:
            total += np.float32(w) * v[rows]
    return total
