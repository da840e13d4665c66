"""Businesses added since the model was trained, ranked beside the ones it knows.

A model version knows the businesses of its training snapshot; a place opened this
morning has no column in it. Retraining for every new business is not an option, yet
the learned ranking is mostly made of features that need no history of the business:
stated interests matching its categories and tags, distance, the user's affinity for
its categories, its rating. Here those are computed for the newcomers alone (their
categories mapped onto the model's), scored with the same weights and the same
per-user evidence, so a newcomer takes its place among the model's own results. What
a newcomer cannot have yet — collaborative and content-profile scores, popularity,
trend — counts as zero, as it would for a business nobody has found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from xo_recommender.engine import features, geo, priors
from xo_recommender.engine.content import _l2_normalise_rows, normalise_term
from xo_recommender.engine.data import Catalogue, known_ratings
from xo_recommender.engine.model import Recommendation
from xo_recommender.engine.reasons import Reason, reasons_for

__all__ = ["like_newcomer", "merge", "newcomers_like", "rank_newcomers", "select"]

#: Shared terms a "more like this" reason names (the rarest first: the most telling).
SHARED_TERMS_SHOWN = 2


def _category_matrix(model, categories: Sequence[Sequence[str]]) -> sp.csr_matrix:
    """Newcomers × the model's category columns (categories it never saw are dropped)."""
    rows, cols = [], []
    for i, names in enumerate(categories):
        for name in names or ():
            column = model._category_column.get(normalise_term(name))
            if column is not None:
                rows.append(i)
                cols.append(column)
    pairs = sorted(set(zip(rows, cols, strict=True)))
    data = np.ones(len(pairs), np.float32)
    return sp.csr_matrix((data, ([r for r, _ in pairs], [c for _, c in pairs])),
                         shape=(len(categories), model.categories.shape[1]))


def _newcomer_features(model, items: Catalogue, row: sp.csr_matrix,
                       interests: Sequence[str], point: tuple[float, float] | None,
                       wanted: set[str]) -> dict[str, np.ndarray]:
    """The features of ``features.compute`` that a business without a history has."""
    m = len(items)
    cats = _category_matrix(model, items.categories)
    out: dict[str, np.ndarray] = {}
    if "any_taste" in wanted:  # made of these two; the first also tells its reason
        wanted = wanted | {"interest_category", "unstated_taste"}
    keys = {normalise_term(t) for t in interests or ()} - {""}
    if keys:
        stated = np.zeros(cats.shape[1], np.float32)
        stated[features._stated_columns(model, interests)] = 1.0
        out["interest_category"] = (features.per_item_sum(cats, stated) > 0).astype(np.float32)
        category_keys = set(model._category_column)
        tag_hits = np.array([len({normalise_term(t) for t in tags or ()} & keys - category_keys)
                             for tags in items.tags or [[] for _ in range(m)]], np.float32)
        out["interest_tag"] = np.minimum(tag_hits, 2.0) / np.float32(2.0)
        # the interest score (max-normalised over the model's candidates) has no common
        # scale with a handful of newcomers: a full match counts as the best match
        out["interest"] = np.maximum(out["interest_category"], out["interest_tag"])
    distances = None
    if point is not None:
        raw = geo.ItemLocations(np.asarray(items.latitudes, np.float64),
                                np.asarray(items.longitudes, np.float64)
                                ).distances_km(*point).astype(np.float32)
        distances = np.where(np.isfinite(raw), raw, np.float32(np.inf))
        out.update(features.distance_features(distances, wanted))
    if row.nnz:
        affinity = features.category_shares(model.categories, row)
        if affinity is not None:
            share = np.minimum(features.per_item_sum(cats, affinity), np.float32(1.0))
            out["category"] = np.sqrt(share)
            out["category_match"] = (share > 0).astype(np.float32)
        counts = features.visited_categories(model.categories, row.indices)[0]
        out["category_count"] = (features.per_item_max(cats, counts) >= 2).astype(np.float32)
        home = None  # the model's businesses from the user's point (home or usual place)
        if point is not None and wanted & {"category_lift", "unstated_lift", "unstated_taste",
                                           "usual_reach", "usual_nearness",
                                           "personal_nearness"}:
            home = np.where(np.isfinite(d := model.locations.distances_km(*point)), d,
                            np.inf).astype(np.float32)
        if wanted & {"category_lift", "unstated_lift", "unstated_taste"}:
            reach = None if home is None else np.exp(-home / np.float32(3.0))
            base = features.category_base(model.categories, model.active, reach)
            stated = features._stated_columns(model, interests)
            out["category_lift"] = features.per_item_max(
                cats, features.category_lift_by_category(model.categories, row, base))
            out["unstated_lift"] = features.per_item_max(
                cats, features.category_lift_by_category(
                    model.categories, row, base, stated=stated if stated.size else None))
            out["unstated_taste"] = features.per_item_max(
                cats, features.unstated_taste_by_category(model.categories, row, base, stated))
            out["any_taste"] = features.any_taste(out["unstated_taste"],
                                                  out.get("interest_category"))
        if home is not None and distances is not None and (
                wanted & {"usual_reach", "usual_nearness", "personal_nearness"}):
            d_hist = home[row.indices]
            out["usual_reach"] = features.usual_reach(distances, row, history_distances=d_hist)
            out["usual_nearness"] = features.usual_nearness(distances, row,
                                                            history_distances=d_hist)
            if "personal_nearness" in wanted:  # the rate from the model's businesses
                out["personal_nearness"] = features.personal_nearness(
                    distances, features.reach_rate(home, d_hist,
                                                   features.inactive_items(model)))
    known = np.asarray(model.ratings, np.float64)
    known = known[np.isfinite(known)]
    prior_mean = float(known.mean()) if known.size else None
    rating = priors.rating_prior(priors.shrunk_rating(
        known_ratings(items.ratings if items.ratings is not None else np.full(m, np.nan)),
        prior_mean=prior_mean))
    out["rating"] = rating
    out["prior"] = priors.cold_start_prior(np.zeros(m, np.float32), rating)
    return {name: np.asarray(v, np.float32) for name, v in out.items() if name in wanted}


def select(items: Catalogue, *, category: str | None = None,
           point: tuple[float, float] | None = None, radius_km: float | None = None,
           exclude_ids: Sequence[int] = (), known_ids: Sequence[int] = ()) -> Catalogue:
    """The newcomers a request may show: active, in ``category``, within ``radius_km`` of
    ``point``, neither excluded nor already in the user's history (``known_ids``)."""
    keep = np.asarray(items.active if items.active is not None else np.ones(len(items)),
                      bool).copy()
    ids = np.asarray(items.ids, np.int64)
    keep &= ~np.isin(ids, np.asarray(list(exclude_ids) + list(known_ids), np.int64))
    if category is not None:
        key = normalise_term(category)
        keep &= np.array([key in {normalise_term(c) for c in cats or ()}
                          for cats in items.categories], bool)
    if radius_km is not None and point is not None:
        d = geo.ItemLocations(np.asarray(items.latitudes, np.float64),
                              np.asarray(items.longitudes, np.float64)).distances_km(*point)
        keep &= geo.within_radius(d, radius_km)
    picked = np.flatnonzero(keep)

    def arr(a):
        return None if a is None else np.asarray(a)[picked]

    return Catalogue(ids=ids[picked], names=[items.names[i] for i in picked],
                     categories=[items.categories[i] for i in picked],
                     tags=[items.tags[i] for i in picked] if items.tags else [],
                     latitudes=arr(items.latitudes), longitudes=arr(items.longitudes),
                     popularity=arr(items.popularity), ratings=arr(items.ratings),
                     active=arr(items.active))


def rank_newcomers(model, items: Catalogue, row: sp.csr_matrix, *,
                   interests: Sequence[str] = (), point: tuple[float, float] | None = None,
                   near_km: float = 10.0, usual_place: bool = False) -> list[Recommendation]:
    """Each newcomer as a ``Recommendation``, scored on the served scale (best first).

    ``row`` is the user's history row in the model (``Recommender.history_row``). Only a
    learned ranking has a scale newcomers can join; under fixed blend weights there is
    none, and nothing is returned. Filtering (active, category, radius, excluded) is the
    caller's: it chose which newcomers to pass. ``usual_place``: ``point`` is where the
    user usually goes (``Recommender.ranking_point``), not one they gave: it ranks and
    orders by reach, and no distance from it is shown.
    """
    if model.params.ranking is None or not len(items):
        return []
    weights = model.segment_weights(row)
    values = _newcomer_features(model, items, row, interests, point, set(weights))
    total = features.score(values, weights, len(items))
    total = np.where(np.isfinite(total), total, np.float32(0.0))
    # rows given: one row per newcomer even when no weighted feature could be computed
    # for them (no location, no history features), so each still gets its reasons
    groups, contributions = features.contributions(values, weights, np.arange(len(items)))
    distances = None
    if point is not None:
        distances = geo.ItemLocations(np.asarray(items.latitudes, np.float64),
                                      np.asarray(items.longitudes, np.float64)
                                      ).distances_km(*point)
    keys = {normalise_term(t): t for t in interests or ()}
    terms = [[keys[k] for k in dict.fromkeys(normalise_term(t) for t in [*c, *g]) if k in keys]
             for c, g in zip(items.categories, items.tags or [[]] * len(items), strict=True)]
    texts = reasons_for(contributions, groups, item_names=list(items.names),
                        matching_terms=terms, distances_km=distances,
                        ratings=None if items.ratings is None else known_ratings(items.ratings),
                        near_km=near_km, usual_place=usual_place)
    out = []
    for r, item_id in enumerate(np.asarray(items.ids, np.int64).tolist()):
        d = None if distances is None or not math.isfinite(distances[r]) \
            else round(float(distances[r]), 3)
        out.append(Recommendation.ranked_from(int(item_id), float(total[r]), texts[r], d,
                                              usual=usual_place))
    out.sort(key=lambda rec: -rec.score)
    return out


def merge(ranked: Sequence[Recommendation], newcomers: Sequence[Recommendation],
          limit: int) -> list[Recommendation]:
    """The model's results and the newcomers by score (the model's first on a tie),
    those within reach before those beyond ``features.FAR_KM`` as the model orders its
    own (``features.within_reach_first``)."""
    if not newcomers:
        return list(ranked)[:limit]
    both = sorted([(_out_of_reach(r), -r.score, 0, i, r) for i, r in enumerate(ranked)]
                  + [(_out_of_reach(r), -r.score, 1, i, r) for i, r in enumerate(newcomers)],
                  key=lambda t: t[:4])
    return [r for *_, r in both[:limit]]


def _out_of_reach(r: Recommendation) -> bool:
    return r.reach_km is not None and r.reach_km > features.FAR_KM



# ------------------------------------------------------------------ more like this


def _term_rows(model, items: Catalogue) -> sp.csr_matrix:
    """Businesses × the model's vocabulary: their categories and tags weighted by the
    model's IDF and L2-normalised like the model's own rows (terms it never saw dropped)."""
    vocab, idf = model.content.vocabulary, model.content.idf
    tags = items.tags or [[] for _ in range(len(items))]
    rows: list[int] = []
    cols: list[int] = []
    for i, (cats, more) in enumerate(zip(items.categories, tags, strict=True)):
        found = {vocab[k] for t in [*(cats or ()), *(more or ())]
                 if (k := normalise_term(t)) in vocab}
        rows.extend([i] * len(found))
        cols.extend(sorted(found))
    cols_a = np.asarray(cols, np.int64)
    weighted = sp.csr_matrix((idf[cols_a].astype(np.float32), (rows, cols_a)),
                             shape=(len(items), len(vocab)), dtype=np.float32)
    return _l2_normalise_rows(weighted)


def _shared_reason(model, query_terms: np.ndarray, terms: np.ndarray) -> list[str]:
    shared = np.intersect1d(query_terms, terms)
    if not shared.size:
        return []
    rarest = shared[np.argsort(-model.content.idf[shared], kind="stable")]
    labels = [str(model.content.labels[j]) for j in rarest[:SHARED_TERMS_SHOWN]]
    return [Reason("shares", terms=", ".join(labels))]


def _more_like(model, query: sp.csr_matrix, point: tuple[float, float] | None,
               newcomers: Catalogue, n: int, *, known: bool,
               exclude_ids: Sequence[int]) -> list[Recommendation]:
    """The businesses whose term vectors are closest to ``query`` (a 1 × vocabulary row):
    among the newcomers, and the model's active businesses too when ``known``. Many share
    the very same terms, so among equals the nearest to ``point`` comes first."""
    q = np.asarray(query.toarray(), np.float32).ravel()
    if not q.any() or n <= 0:
        return []
    q_terms = query.indices
    new_rows = _term_rows(model, newcomers)
    ids = [np.asarray(newcomers.ids, np.int64)]
    cos = [np.asarray(new_rows @ q, np.float32).ravel()]
    where = [(np.asarray(newcomers.latitudes, np.float64),
              np.asarray(newcomers.longitudes, np.float64))]
    if known:
        ids.append(np.asarray(model.items.ids, np.int64))
        cos.append(np.where(model.active, np.asarray(model.content.item_terms @ q,
                                                      np.float32).ravel(), np.float32(0)))
        where.append((np.asarray(model.latitudes, np.float64),
                      np.asarray(model.longitudes, np.float64)))
    all_ids, all_cos = np.concatenate(ids), np.concatenate(cos)
    distance = np.full(len(all_ids), np.inf)
    if point is not None:
        lat = np.concatenate([w[0] for w in where])
        lng = np.concatenate([w[1] for w in where])
        d = geo.ItemLocations(lat, lng).distances_km(*point)
        distance = np.where(np.isfinite(d), d, np.inf)
    keep = (all_cos > 1e-6) & ~np.isin(all_ids, np.asarray(list(exclude_ids), np.int64))
    picked = np.flatnonzero(keep)
    order = np.lexsort((all_ids[picked], distance[picked],
                        -np.round(all_cos[picked], 6)))[:n]
    n_new = len(newcomers)
    out = []
    for j in picked[order]:
        terms = (new_rows[j].indices if j < n_new
                 else model.content.item_terms[j - n_new].indices)
        out.append(Recommendation(int(all_ids[j]), float(all_cos[j]),
                                  _shared_reason(model, q_terms, terms), None))
    return out


def like_newcomer(model, business: Catalogue, newcomers: Catalogue, n: int = 10
                  ) -> list[Recommendation]:
    """"More like this" for a business the model has no column for (created since it was
    trained): the active businesses, known or new, that share its categories and tags,
    closest term vectors first. With no history there is nothing "chosen together" yet,
    but what it *is* is known from the day it opens."""
    if not len(business):
        return []
    point = None if business.latitudes is None or business.longitudes is None else \
        _finite_point(business.latitudes[0], business.longitudes[0])
    return _more_like(model, _term_rows(model, business), point, newcomers, n, known=True,
                      exclude_ids=[int(business.ids[0])])


def newcomers_like(model, item_id: int, newcomers: Catalogue, n: int,
                   exclude_ids: Sequence[int] = ()) -> list[Recommendation]:
    """The newcomers that share a known business's categories and tags (closest first):
    they follow the model's own neighbours in its "more like this" list, having none of
    the evidence those have."""
    idx = int(model.items.to_index([item_id])[0])
    if idx < 0 or not len(newcomers):
        return []
    point = _finite_point(model.latitudes[idx], model.longitudes[idx])
    return _more_like(model, model.content.item_terms[idx], point, newcomers, n, known=False,
                      exclude_ids=[item_id, *exclude_ids])


def _finite_point(lat, lng) -> tuple[float, float] | None:
    """A valid point, or None for unknown (NaN, infinite or out of range: 95°N is no
    place, so nothing is near it)."""
    try:
        return geo.validate_point(float(lat), float(lng))
    except (TypeError, ValueError):
        return None
