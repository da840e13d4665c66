"""The whole recommender: trained once, serialised as one artifact, queried per request.

``Recommender.fit`` turns a catalogue and interaction events into the parts of the
model (collaborative item-item weights, content term vectors, locations, priors);
``recommend`` scores one user at request time from their *current* history, so a new
interaction changes the next answer without retraining (fold-in through ``x_u @ S``).
The offline evaluation and production serve through this same class.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from xo_recommender.engine import artifact_format, blend, diversity, features, geo, priors
from xo_recommender.engine.collaborative import CollaborativeModel
from xo_recommender.engine.content import ContentModel, normalise_term
from xo_recommender.engine.data import Catalogue, Events
from xo_recommender.engine.matrix import (
    IdIndex,
    build_matrix,
    interaction_weights,
    row_spans,
    user_row,
)
from xo_recommender.engine.reasons import reasons_for

#: artifact_format; 1 was an .npz, 2 held terms as one fixed-width array: both readable.
#: A release that cannot read a version says "unsupported model format" (rolling deploys:
#: a worker of the release before keeps serving the version it has loaded).
_FORMAT_VERSION = 3
_READABLE_VERSIONS = frozenset({2, 3})
_NPZ_FORMAT_VERSION = 1
DAY = 86_400.0

#: Component weights. Collaborative/profile/prior were chosen on validation splits of
#: ml-100k's train file (``benchmarks/quality_ml100k.py --tune``); interest and proximity
#: have no counterpart there and are set so a stated interest or a nearby place can lift
#: an item about as much as a strong collaborative signal.
DEFAULT_BLEND: dict[str, float] = {
    blend.COLLABORATIVE: 1.0,
    blend.PROFILE: 0.15,
    blend.INTEREST: 0.3,
    blend.PROXIMITY: 0.25,
    blend.PRIOR: 0.05,
}

#: Relative strength of each interaction type in training.
DEFAULT_TYPE_WEIGHTS: dict[str, float] = {
    "view": 1.0, "like": 3.0, "save": 4.0, "purchase": 5.0, "share": 4.0,
}

#: Neighbours kept per business above the exact-solve size: 500 keeps ml-100k-size
#: quality; at 50,000 businesses 200 cuts the artifact from ~190 to ~77 MiB for about
#: -0.002 validation NDCG.
LARGE_CATALOGUE_TOP_K = 200

#: Candidates the diversity re-rank chooses from, for every page (a larger offset than
#: this widens it, and pages past it may shift).
DIVERSITY_POOL = 1000

#: Half-life of the "trending" signal: what people engaged with in the last weeks.
TREND_HALF_LIFE_DAYS = 14.0

#: Per-business signals stored with the model (``features.compute`` reads them).
SIGNALS = ("popularity", "trend", "hosted", "rating", "prior")


@dataclass(frozen=True)
class EngineParams:
    """Everything that shapes training and ranking; stored with each model version."""

    type_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TYPE_WEIGHTS))
    half_life_days: float | None = 90.0
    blend_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BLEND))
    exclude_types: Sequence[str] = ("like", "save", "share")
    geo_scale_km: float = 10.0
    near_km: float = 10.0
    diversity_lambda: float = 0.7
    collaborative: Mapping[str, object] = field(default_factory=dict)
    #: The learned ranking (``selfeval.learn_ranking``): feature weights per segment
    #: (``"history"`` / ``"cold"``). ``None``: the fixed ``blend_weights`` rank.
    ranking: Mapping[str, Mapping[str, float]] | None = None

    def to_dict(self) -> dict:
        return {
            "type_weights": dict(self.type_weights),
            "half_life_days": self.half_life_days,
            "blend_weights": dict(self.blend_weights),
            "exclude_types": list(self.exclude_types),
            "geo_scale_km": self.geo_scale_km,
            "near_km": self.near_km,
            "diversity_lambda": self.diversity_lambda,
            "collaborative": dict(self.collaborative),
            "ranking": None if self.ranking is None else
            {segment: dict(w) for segment, w in self.ranking.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> EngineParams:
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        return cls(**{**data, "exclude_types": tuple(data.get("exclude_types", ()))})


@dataclass(frozen=True)
class Query:
    """One request: the user's live history and context, and what page they want."""

    history: Events | None = None
    interests: Sequence[str] = ()
    location: tuple[float, float] | None = None  # the user's home, if known
    near: tuple[float, float] | None = None  # an explicit point wins over ``location``
    radius_km: float | None = None
    category: str | None = None
    exclude_ids: Sequence[int] = ()
    limit: int = 10
    offset: int = 0
    diversify: bool = False
    now: float | None = None  # Unix seconds; default: the model's training time


@dataclass(frozen=True)
class Recommendation:
    item_id: int
    score: float
    reasons: list[str]
    distance_km: float | None  # from the point the user gave (their home or ``near``)
    #: km from the point it was ranked from, when that is where the user usually goes
    #: (no home given, or a stale one; ``Recommender.ranking_point``): what orders it
    #: within reach, never shown
    usual_km: float | None = None

    @classmethod
    def ranked_from(cls, item_id: int, score: float, reasons: list[str], km: float | None,
                    *, usual: bool) -> Recommendation:
        """A result ``km`` from the point it was ranked from: shown as ``distance_km``
        when the user gave that point, else (``usual``: where they usually go) kept as
        ``usual_km`` for ordering only."""
        return cls(item_id, score, reasons, None if usual else km, km if usual else None)

    @property
    def reach_km(self) -> float | None:
        """The distance that says whether it is within reach (``features.FAR_KM``)."""
        return self.distance_km if self.usual_km is None else self.usual_km


def _text(arrays: Mapping[str, np.ndarray], name: str) -> Sequence[str]:
    """A list of strings stored by ``text_arrays`` (or, by artifacts written before,
    as one fixed-width array)."""
    if f"{name}.offsets" in arrays:
        return artifact_format.TextList(arrays[name], arrays[f"{name}.offsets"])
    return arrays[name]


def _terms_from(buf: np.ndarray, n: int) -> list[str]:
    if n == 0:
        return []
    return bytes(buf).decode().split("\x1f")


class Recommender:
    """A trained model. Build with ``fit``; store with ``to_bytes`` / ``from_bytes``."""

    #: Share of the strongest contribution that still lets a reason name another item.
    REASON_VARIETY = 0.3

    def __init__(self, *, params: EngineParams, items: IdIndex, names: list[str],
                 collaborative: CollaborativeModel, content: ContentModel,
                 categories: sp.csr_matrix, category_names: list[str],
                 latitudes: np.ndarray, longitudes: np.ndarray, prior: np.ndarray,
                 ratings: np.ndarray, active: np.ndarray, trained_at: float,
                 stats: Mapping[str, int],
                 signals: Mapping[str, np.ndarray] | None = None) -> None:
        self.params = params
        self.items = items
        self.names = names
        self.collaborative = collaborative
        self.content = content
        self.categories = sp.csr_matrix(categories, dtype=np.float32)
        self.category_names = category_names
        self._category_column = {name: j for j, name in enumerate(category_names)}
        self.latitudes = np.asarray(latitudes, dtype=np.float64)
        self.longitudes = np.asarray(longitudes, dtype=np.float64)
        self.locations = geo.ItemLocations(self.latitudes, self.longitudes)
        self.prior = np.asarray(prior, dtype=np.float32)
        self.ratings = np.asarray(ratings, dtype=np.float64)
        self.active = np.asarray(active, dtype=bool)
        self.trained_at = float(trained_at)
        self.stats = dict(stats)
        self._types = tuple(params.type_weights)
        zeros = np.zeros(len(items), np.float32)
        given = dict(signals or {})
        #: Per-business signals in [0, 1] that the learned ranking weighs.
        self.signals: dict[str, np.ndarray] = {
            name: np.asarray(given.get(name, self.prior if name in ("prior", "popularity")
                                       else zeros), dtype=np.float32)
            for name in SIGNALS
        }

    # ---------------------------------------------------------------- training
    @classmethod
    def fit(cls, catalogue: Catalogue, events: Events, params: EngineParams | None = None,
            *, now: float | None = None) -> Recommender:
        params = params or EngineParams()
        catalogue = catalogue.sorted_by_id()
        items = IdIndex(catalogue.ids)
        n_items = len(items)
        item_idx = items.to_index(events.item_ids)
        type_w = cls._type_weight_array(params, events)
        w = type_w if events.weights is None else type_w * np.asarray(events.weights, np.float64)
        keep = (item_idx >= 0) & (w > 0)
        users = IdIndex.from_ids(np.asarray(events.user_ids)[keep])
        last_seen = None if events.last_seen is None else np.asarray(events.last_seen)
        if now is None:
            now = float(last_seen.max()) if last_seen is not None and last_seen.size else 0.0
        half_life = params.half_life_days * DAY if params.half_life_days else None
        x = build_matrix(
            users.to_index(np.asarray(events.user_ids)[keep]), item_idx[keep], w[keep],
            None if events.counts is None else np.asarray(events.counts)[keep],
            None if last_seen is None else last_seen[keep],
            shape=(len(users), n_items), now=now, half_life=half_life,
        )
        options = dict(params.collaborative)
        if "top_k" not in options and n_items > options.get(
                "exact_max_items", CollaborativeModel().exact_max_items):
            options["top_k"] = LARGE_CATALOGUE_TOP_K
        collaborative = CollaborativeModel(**options).fit(x)
        content = ContentModel.build([c + t for c, t in
                                      zip(catalogue.categories, catalogue.tags, strict=True)])
        categories, category_names = diversity.category_index(catalogue.categories)
        engaged = priors.log_normalise(priors.matrix_popularity(x))
        hosted = priors.log_normalise(np.maximum(catalogue.popularity, 0.0))
        popularity = 0.5 * (engaged + hosted) if catalogue.popularity.any() else engaged
        rating = priors.rating_prior(priors.shrunk_rating(catalogue.ratings))
        prior = priors.cold_start_prior(popularity, rating)
        trend = np.zeros(n_items, np.float32)
        if last_seen is not None and keep.any():
            trend = priors.log_normalise(priors.decayed_popularity(
                item_idx[keep], n_items, timestamps=last_seen[keep], now=now,
                half_life=TREND_HALF_LIFE_DAYS * DAY, weights=w[keep]))
        signals = {"popularity": engaged, "trend": trend,
                   "hosted": hosted if catalogue.popularity.any() else engaged,
                   "rating": rating, "prior": prior}
        return cls(
            params=params, items=items, names=catalogue.names, collaborative=collaborative,
            content=content, categories=categories, category_names=category_names,
            latitudes=catalogue.latitudes, longitudes=catalogue.longitudes, prior=prior,
            ratings=catalogue.ratings, active=catalogue.active, trained_at=now,
            stats={"users": len(users), "items": n_items, "interactions": int(keep.sum())},
            signals=signals,
        )

    @staticmethod
    def _type_weight_array(params: EngineParams, events: Events) -> np.ndarray:
        table = np.array([float(params.type_weights.get(t, 0.0)) for t in events.types] or [0.0])
        return table[np.asarray(events.type_codes, dtype=np.int64)]

    @property
    def n_items(self) -> int:
        return len(self.items)

    # ----------------------------------------------------------------- serving
    def history_row(self, history: Events | None, now: float | None = None) -> sp.csr_matrix:
        """The user's weighted 1×n row from their live history (negative types left out)."""
        if history is None or len(history) == 0:
            return sp.csr_matrix((1, self.n_items), dtype=np.float32)
        w = self._type_weight_array(self.params, history)
        if history.weights is not None:
            w = w * np.asarray(history.weights, dtype=np.float64)
        idx = self.items.to_index(history.item_ids)
        idx = np.where(w > 0, idx, -1)
        half_life = self.params.half_life_days * DAY if self.params.half_life_days else None
        return user_row(idx, self.n_items, w, history.counts, history.last_seen,
                        now=self.trained_at if now is None else now, half_life=half_life)

    def scores(self, query: Query, mask: np.ndarray | None = None) -> blend.Ranking:
        """Score ``query`` as served and rank all candidates in ``mask``."""
        row = self.history_row(query.history, query.now)
        return self._rank_page(query, row, mask, k=self.n_items, offset=0)

    def _rank_page(self, query: Query, row: sp.csr_matrix, mask: np.ndarray | None, *,
                   k: int, offset: int) -> blend.Ranking:
        """One page by the learned ranking when there is one, else the fixed blend."""
        if self.params.ranking is not None:
            return self._learned_rank(query, row, mask, k=k, offset=offset)
        return self._rank(query, self._components(query, row), k=k, offset=offset, mask=mask)

    def segment_weights(self, row: sp.csr_matrix) -> dict[str, float]:
        """The learned feature weights for this user (with or without a history)."""
        ranking = self.params.ranking or {}
        segment = "history" if row.nnz else "cold"
        weights = {f: float(w) for f, w in (ranking.get(segment) or {}).items()
                   if w and f in features.FEATURES}
        return weights or {"prior": 1.0}

    def _learned_rank(self, query: Query, row: sp.csr_matrix, mask: np.ndarray | None, *,
                      k: int, offset: int) -> blend.Ranking:
        weights = self.segment_weights(row)
        point, _ = self.ranking_point(query, row)
        distances = None if point is None else self.locations.distances_km(*point)
        within = self._within_reach(distances, mask, k + offset)
        values = features.compute(self, row, interests=query.interests, point=point,
                                  mask=mask, needed=weights, compact=True,
                                  distances=distances, within=within)
        if not any(w > 0 and name in values for name, w in weights.items()):
            # Nothing the weights favour exists for this user (a baseline of distance
            # alone for a user with no point to rank from): the prior, not the id, ranks.
            weights = {"prior": 1.0, **{f: w for f, w in weights.items() if w < 0}}
            values = features.compute(self, row, interests=query.interests, point=point,
                                      mask=mask, needed=weights, compact=True,
                                      distances=distances, within=within)
        # with ``within``, every business within reach comes before every other
        # (within_reach_first) and they fill the page: they alone are scored, all candidates
        total = features.score(values, weights, self.n_items, rows=within)
        if not np.isfinite(total.sum(dtype=np.float64)):  # a sum is finite: every score is
            total = np.where(np.isfinite(total), total, np.float32(0.0))
        if within is None:
            if distances is not None:
                total = features.within_reach_first(total, distances)
            if mask is not None:
                total = np.where(mask, total, np.float32(-np.inf))
        at = blend.top_k(total, k, offset)
        idx = at if within is None else within[at]
        groups, contributions = features.contributions(values, weights, idx)
        return blend.Ranking(idx, total[at], contributions, groups)

    def ranking_point(self, query: Query, row: sp.csr_matrix | None = None
                      ) -> tuple[tuple[float, float] | None, bool]:
        """Where distances are measured from when ranking, and whether that is where the
        user usually goes rather than a point they gave (``row``: their history row, if
        made already).

        The point asked for (``near``) wins. Else the home, unless it is stale: none of
        at least ``STALE_HOME_PLACES`` located places of the history lies within
        ``features.FAR_KM`` of it (they moved, or use the site only in another city), and
        ranking from it would put a city they never go to first. Else where their
        history says they usually go (``ItemLocations.usual_point``): many users never
        give a home, yet distance is what decides most outings.
        Shown distances (``distance_km``, "km away") stay those from a point the user
        gave, and only when it is the one ranked from.
        """
        if query.near is not None:
            return query.near, False
        if row is None:
            row = self.history_row(query.history, query.now)
        home = query.location
        if home is not None:
            if row.indices.size < self.STALE_HOME_PLACES:
                return home, False  # too few places yet to judge it
            away = self.locations.distances_km(*home, at=row.indices)
            located = away[np.isfinite(away)]
            if located.size < self.STALE_HOME_PLACES or bool(
                    (located <= np.float32(features.FAR_KM)).any()):
                return home, False  # few located places, or some within reach of it
        usual = self._usual_point(query, row)
        if usual is None:
            return home, False
        return usual, True

    #: A home is judged stale only from this many history places, none near it: one
    #: trip says little of where a user lives.
    STALE_HOME_PLACES = 3

    def _usual_point(self, query: Query, row: sp.csr_matrix) -> tuple[float, float] | None:
        """``ItemLocations.usual_point`` of the history, each place counted by how
        recently the user went (the half-life), not by what they did there: two places
        saved for a trip are not where one lives. Kept on the row: the ranking and its
        reasons both ask."""
        if not row.nnz:
            return None
        point = getattr(row, "_xo_usual_point", False)
        if point is False:
            point = self.locations.usual_point(row.indices, self._recency(query, row.indices))
            row._xo_usual_point = point
        return point

    def _recency(self, query: Query, places: np.ndarray) -> np.ndarray | None:
        """Per place of the history (``places``: sorted indices), the half-life's decay
        since the user's latest interaction there (None: no times known, all alike)."""
        history = query.history
        half_life = self.params.half_life_days * DAY if self.params.half_life_days else None
        if history is None or history.last_seen is None or not half_life:
            return None
        idx = self.items.to_index(history.item_ids)
        at = np.minimum(np.searchsorted(places, idx), places.size - 1)
        ok = (idx >= 0) & (places[at] == idx)
        latest = np.full(places.size, -np.inf)  # never seen: infinitely old, weight 0
        np.maximum.at(latest, at[ok], np.asarray(history.last_seen, np.float64)[ok])
        # the history row's own decay, without its type weights and counts
        return interaction_weights(last_seen=latest, half_life=half_life,
                                   now=self.trained_at if query.now is None else query.now)

    #: Score only the businesses within reach when they are at most this share of all
    #: (a city among many); past it, scoring them all costs about the same.
    WITHIN_REACH_SHARE = 0.5

    def _within_reach(self, distances: np.ndarray | None, mask: np.ndarray | None,
                      depth: int) -> np.ndarray | None:
        """The candidates within ``features.FAR_KM`` (unknown distances count as within),
        when they alone can fill the ranks asked for (``depth``), else None."""
        if distances is None:
            return None
        near = ~(distances > np.float32(features.FAR_KM))
        if mask is not None:
            near &= mask
        within = np.flatnonzero(near)
        if within.size < depth or within.size > self.WITHIN_REACH_SHARE * self.n_items:
            return None
        return within

    def _components(self, query: Query, row: sp.csr_matrix) -> dict[str, np.ndarray]:
        components: dict[str, np.ndarray] = {}
        if row.nnz:
            components[blend.COLLABORATIVE] = self.collaborative.score(row)
            components[blend.PROFILE] = self.content.profile_scores(row)
        if query.interests:
            components[blend.INTEREST] = self.content.interest_scores(query.interests)
        point, _ = self.ranking_point(query, row)  # as the learned ranking's: one rule
        if point is not None:
            distances = self.locations.distances_km(*point)
            components[blend.PROXIMITY] = geo.proximity_scores(
                distances, scale_km=self.params.geo_scale_km)
        components[blend.PRIOR] = self.prior
        return components

    def _rank(self, query, components, *, k, offset, mask) -> blend.Ranking:
        weights = {name: self.params.blend_weights.get(name, 0.0) for name in components}
        if not any(weights.values()):
            weights[blend.PRIOR] = 1.0
        return blend.rank(components, weights, k=k, offset=offset, mask=mask)

    def candidate_mask(self, query: Query, row_items: np.ndarray | None = None) -> np.ndarray:
        """Items that may be shown: active, not excluded, in the category and radius."""
        history = query.history
        seen = hidden = None
        if history is not None and len(history):
            idx = self.items.to_index(history.item_ids)
            codes = np.asarray(history.type_codes, dtype=np.intp)
            ok = idx >= 0
            idx, codes = idx[ok], codes[ok]
            # by type code (a handful of types), as blend.interacted_to_exclude by name
            excluded = set(self.params.exclude_types)
            negative = {t for t, w in self.params.type_weights.items() if w < 0}
            seen = np.unique(idx[np.array([t in excluded for t in history.types] or [False],
                                          dtype=bool)[codes]])
            hidden = np.unique(idx[np.array([t in negative for t in history.types] or [False],
                                            dtype=bool)[codes]])
        exclude = self.items.to_index(np.asarray(query.exclude_ids, dtype=np.int64))
        allowed = None
        if query.category is not None:
            column = self._category_column.get(normalise_term(query.category))
            allowed = np.zeros(self.n_items, dtype=bool)
            if column is not None:
                allowed[self.categories[:, column].nonzero()[0]] = True
        within = None
        if query.radius_km is not None:
            point = query.near or query.location
            if point is None:
                raise ValueError("radius_km needs a point: pass near=(lat, lng) or a user "
                                 "with a location")
            within = geo.within_radius(self.locations.distances_km(*point), query.radius_km)
        return blend.candidate_mask(self.n_items, active=self.active, seen=seen, hidden=hidden,
                                    exclude=exclude[exclude >= 0], allowed=allowed,
                                    within_radius=within)

    def recommend(self, query: Query) -> list[Recommendation]:
        """One page of recommendations with reasons and distances."""
        if query.limit < 1 or query.offset < 0:
            raise ValueError("limit must be >= 1 and offset >= 0")
        row = self.history_row(query.history, query.now)
        mask = self.candidate_mask(query)
        if query.diversify:
            # One pool for every page, whatever the offset: greedy MMR picks a prefix that
            # does not depend on how far the caller reads, so pages neither repeat nor skip.
            pool = self._rank_page(query, row, mask,
                                   k=max(DIVERSITY_POOL, query.offset + query.limit), offset=0)
            order = diversity.mmr_rerank(pool.indices, pool.scores, self.categories,
                                         query.offset + query.limit,
                                         lambda_=self.params.diversity_lambda)
            ranking = pool.take(order[query.offset:])
        else:
            ranking = self._rank_page(query, row, mask, k=query.limit, offset=query.offset)
        return self._explain(query, row, ranking)

    def _explain(self, query: Query, row: sp.csr_matrix,
                 ranking: blend.Ranking) -> list[Recommendation]:
        if not len(ranking):
            return []
        point, usual = self.ranking_point(query, row)  # where the page was ranked from
        distances = None
        if point is not None:
            distances = self.locations.distances_km(*point, at=ranking.indices).astype(
                np.float64)
        type_of = self._history_types(query.history)
        collab_src = profile_src = None
        def lifted(component: str) -> bool:  # evidence is looked up only where it is used
            if component not in ranking.components:
                return False
            return bool((ranking.contributions[:, ranking.components.index(component)] > 0)
                        .any())

        if row.nnz and lifted(blend.COLLABORATIVE):
            collab_src = self._collaborative_sources(row, ranking.indices)
        if row.nnz and lifted(blend.PROFILE):
            profile_src, _ = self.content.profile_sources(ranking.indices, row)
        texts = reasons_for(
            ranking.contributions, ranking.components, item_names=self.names,
            collaborative_sources=collab_src,
            collaborative_types=None if collab_src is None else
            [type_of.get(int(s)) for s in collab_src],
            profile_sources=profile_src,
            profile_types=None if profile_src is None else
            [type_of.get(int(s)) for s in profile_src],
            matching_terms=self.content.matching_terms_for(ranking.indices, query.interests)
            if query.interests else None,
            categories=self._category_sources(row, ranking.indices)
            if row.nnz and lifted(blend.CATEGORY) else None,
            distances_km=distances, ratings=self.ratings[ranking.indices],
            near_km=self.params.near_km, usual_place=usual,
        )
        ids = self.items.to_ids(ranking.indices)
        return [Recommendation.ranked_from(
                    int(ids[r]), float(ranking.scores[r]), texts[r],
                    None if distances is None or not math.isfinite(distances[r])
                    else round(float(distances[r]), 3), usual=usual)
                for r in range(len(ranking))]

    def _category_sources(self, row: sp.csr_matrix, results: np.ndarray) -> list[str | None]:
        """Per result, its category the user engages with most (None if none of them)."""
        shares = features.history_category_weights(self.categories, row).astype(np.float64)
        cols = features.category_slots(self.categories)[:, results]  # slot × result
        values = np.where(cols >= 0, shares[cols], -np.inf)
        best = np.argmax(values, axis=0)  # the first of equals, in the matrix's order
        top = values[best, np.arange(results.shape[0])]
        out: list[str | None] = []
        for r in range(results.shape[0]):
            if not top[r] > 0:
                out.append(None)
                continue
            key = self.category_names[int(cols[best[r], r])]
            term = self.content.vocabulary.get(key)
            out.append(str(self.content.labels[term]) if term is not None else key)
        return out

    def _collaborative_sources(self, row: sp.csr_matrix, results: np.ndarray) -> np.ndarray:
        """Per result, the history item contributing most to its collaborative score.

        The batch form of ``CollaborativeModel.explain`` (one sparse slice for the whole
        page instead of one per result): contribution of history item i to result j is
        ``x_u[i] · S[i, j]``; ties go to the lower item index; -1 when none is positive.
        Down the page, an item not named yet is preferred when it contributes at least
        ``REASON_VARIETY`` of the strongest.
        """
        hist = row.indices
        contrib = self._history_by_results(hist, results)
        contrib *= row.data[:, None]
        sources = np.full(results.shape[0], -1, dtype=np.int64)
        if not hist.size:
            return sources
        items = hist.tolist()
        used: set[int] = set()
        # a page is a few dozen numbers per result: plain Python over lists is faster
        # than a handful of NumPy calls on each tiny column
        for j, column in enumerate(contrib.T.tolist()):
            best = max(column)
            if best <= 0:
                continue
            # Name another history item when it explains nearly as much: a page of
            # "because you saved X" with one X throughout tells the user little.
            floor = self.REASON_VARIETY * best
            strong = sorted((i for i, v in enumerate(column) if v >= floor),
                            key=lambda i: -column[i])  # stable: ties to the lower row
            fresh = [i for i in strong if items[i] not in used]
            pick = fresh[0] if fresh else column.index(best)
            sources[j] = items[pick]
            used.add(items[pick])
        return sources

    def _history_by_results(self, hist: np.ndarray, results: np.ndarray) -> np.ndarray:
        """``S[hist][:, results]`` as a dense array (S's dtype), gathered from the history
        rows: slicing columns out of a 50,000-column CSR costs more than the rest of the
        page's explanation."""
        s = self.collaborative.similarity_
        if not s.has_canonical_format:  # duplicates: let scipy add them, as toarray would
            return s[hist][:, results].toarray()
        pos, rows, _ = row_spans(s, hist)
        out = np.zeros((hist.shape[0], results.shape[0]), dtype=s.dtype)
        if not pos.size or not results.size:
            return out
        columns = s.indices[pos]
        order = np.argsort(results, kind="stable")
        ranked = results[order]
        at = np.minimum(np.searchsorted(ranked, columns), ranked.shape[0] - 1)
        hit = ranked[at] == columns
        out[rows[hit], order[at[hit]]] = s.data[pos[hit]]
        return out

    def _history_types(self, history: Events | None) -> dict[int, str]:
        """The strongest interaction type per history item, for "because you saved X"."""
        if history is None or not len(history):
            return {}
        idx = self.items.to_index(history.item_ids)
        best: dict[int, tuple[float, str]] = {}
        for i, code in zip(idx.tolist(), np.asarray(history.type_codes).tolist(), strict=True):
            name = history.types[code]
            w = float(self.params.type_weights.get(name, 0.0))
            if i >= 0 and w > best.get(i, (-math.inf, ""))[0]:
                best[i] = (w, name)
        return {i: name for i, (_, name) in best.items()}

    def similar(self, item_id: int, n: int = 10) -> list[tuple[int, float]]:
        """Businesses like ``item_id`` (collaborative neighbours, then content), active only."""
        idx = int(self.items.to_index([item_id])[0])
        if idx < 0:
            raise KeyError(item_id)
        cols, vals = self.collaborative.similar_items(idx, n * 2)
        if cols.size < n:
            c2, v2 = self.content.similar_items(idx, n * 2)
            fresh = ~np.isin(c2, cols)
            cols = np.concatenate([cols, c2[fresh]])
            vals = np.concatenate([vals, v2[fresh] * 1e-3])
        keep = self.active[cols]
        ids = self.items.to_ids(cols[keep][:n])
        return [(int(i), float(v)) for i, v in zip(ids, vals[keep][:n], strict=True)]

    # ------------------------------------------------------------ serialising
    def to_bytes(self) -> bytes:
        """One artifact (``artifact_format``) in memory; ``to_parts`` streams it."""
        return artifact_format.pack(*self.to_artifact())

    def to_parts(self) -> Iterator[bytes | memoryview]:
        """The artifact's bytes in order, without a second copy of the arrays: what a
        store writes chunk by chunk (``artifact_format.chunks``)."""
        return artifact_format.pieces(*self.to_artifact())

    def to_artifact(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)`` of the artifact: a JSON header and flat named arrays that
        load by memory-mapping. To store a new part, add its JSON to ``meta`` or its
        arrays to ``arrays`` here, and read it back in ``from_bytes``: one line each."""
        collab_meta, collab_arrays = self.collaborative.to_arrays()
        content = self.content
        meta = {
            "format_version": _FORMAT_VERSION,
            "params": self.params.to_dict(),
            "stats": self.stats,
            "trained_at": self.trained_at,
            "category_names": list(self.category_names),
            "collaborative": collab_meta,
            "content_shape": list(content.item_terms.shape),
            "cat_shape": list(self.categories.shape),
        }
        arrays = {
            "item_ids": self.items.ids,
            **artifact_format.text_arrays("names", self.names),
            **{f"collaborative.{k}": v for k, v in collab_arrays.items()},
            "content.data": content.item_terms.data,
            "content.indices": content.item_terms.indices,
            "content.indptr": content.item_terms.indptr,
            **artifact_format.text_arrays("content.terms", content.terms.tolist()),
            **artifact_format.text_arrays("content.labels", content.labels.tolist()),
            "content.idf": content.idf,
            "cat_data": self.categories.data, "cat_indices": self.categories.indices,
            "cat_indptr": self.categories.indptr,
            "latitudes": self.latitudes, "longitudes": self.longitudes, "prior": self.prior,
            "ratings": self.ratings, "active": self.active,
            **{f"signal.{name}": values for name, values in self.signals.items()},
        }
        return meta, arrays

    @classmethod
    def from_bytes(cls, payload) -> Recommender:
        """Inverse of ``to_bytes``. ``payload`` may be ``bytes`` or an ``mmap``: the big
        arrays stay views into it (no copy), so processes mapping one file share it."""
        if not artifact_format.is_artifact(payload):
            return cls._from_npz(bytes(payload))
        meta, a = artifact_format.unpack(payload)
        if meta.get("format_version") not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported model format {meta.get('format_version')}")
        ids = a["item_ids"]
        collab = {k.split(".", 1)[1]: v for k, v in a.items() if k.startswith("collaborative.")}
        return cls(
            params=EngineParams.from_dict(meta["params"]),
            items=IdIndex(ids),
            names=artifact_format.TextList(a["names"], a["names.offsets"]),
            collaborative=CollaborativeModel.from_arrays(meta["collaborative"], collab),
            content=ContentModel(
                sp.csr_matrix((a["content.data"], a["content.indices"], a["content.indptr"]),
                              shape=tuple(meta["content_shape"])),
                _text(a, "content.terms"), _text(a, "content.labels"), a["content.idf"]),
            categories=sp.csr_matrix((a["cat_data"], a["cat_indices"], a["cat_indptr"]),
                                     shape=tuple(meta["cat_shape"])),
            category_names=list(meta["category_names"]),
            latitudes=a["latitudes"], longitudes=a["longitudes"], prior=a["prior"],
            ratings=a["ratings"], active=a["active"], trained_at=float(meta["trained_at"]),
            stats=meta["stats"],
            signals={name: a[f"signal.{name}"] for name in SIGNALS if f"signal.{name}" in a},
        )

    @classmethod
    def _from_npz(cls, payload: bytes) -> Recommender:
        """Artifacts written before the mapped format (``format_version`` 1)."""
        import json

        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            if int(z["format_version"]) != _NPZ_FORMAT_VERSION:
                raise ValueError(f"unsupported model format {int(z['format_version'])}")
            ids = z["item_ids"]
            shape = tuple(int(s) for s in z["cat_shape"])
            return cls(
                params=EngineParams.from_dict(json.loads(bytes(z["params"]))),
                items=IdIndex(ids),
                names=_terms_from(z["names"], ids.shape[0]),
                collaborative=CollaborativeModel.from_bytes(bytes(z["collaborative"])),
                content=ContentModel.from_bytes(bytes(z["content"])),
                categories=sp.csr_matrix((z["cat_data"], z["cat_indices"], z["cat_indptr"]),
                                         shape=shape),
                category_names=_terms_from(z["category_names"], shape[1]),
                latitudes=z["latitudes"], longitudes=z["longitudes"], prior=z["prior"],
                ratings=z["ratings"], active=z["active"], trained_at=float(z["trained_at"]),
                stats=json.loads(bytes(z["stats"])),
                signals={name: z[f"signal_{name}"] for name in SIGNALS
                         if f"signal_{name}" in z.files},
            )
