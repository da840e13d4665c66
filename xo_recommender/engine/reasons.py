"""Short, true, human reasons for each recommendation, strongest first.

The blend records how much each component contributed to each result; a reason is
phrased from each contributing component, ordered by contribution, so the first reason
is what really put the item on the page. The evidence behind a phrase (which of the
user's items, which interest, how far) is computed by the components and passed in as
plain arrays aligned with the results; this module only chooses and words.

Every result gets 1-3 distinct reasons, never none: when no component can be phrased
(all contributions zero, missing evidence) the fallback is the distance if known, else
a generic line. A phrase is never made up: "Highly rated" needs a high rating when
ratings are given, "Popular near you" needs a known, near distance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xo_recommender.engine.blend import (
    CATEGORY,
    COLLABORATIVE,
    INTEREST,
    POPULARITY,
    PRIOR,
    PROFILE,
    PROXIMITY,
    RATING,
    TRENDING,
)

__all__ = ["PAST_TENSE", "TEMPLATES", "Reason", "reasons_for"]

#: Every phrase, by code, with named fields: the English text, and the message a host
#: translates (``xo_recommender.reason_text`` renders them with gettext).
TEMPLATES: dict[str, str] = {
    "because": "Because you {verb} {name}",
    "similar_taste": "Liked by people with similar taste",
    "similar_to": "Similar to {name} you {verb}",
    "interest": "Matches your interest in {term}",
    "category": "You often go to {category} places",
    "trending_near": "Trending near you",
    "trending": "Trending on {site}",
    "popular_near": "Popular near you",
    "popular": "Popular on {site}",
    "rated": "Highly rated",
    "distance": "{km} km away",
    "usual_area": "Near places you often go",
    "trending_usual": "Trending near places you often go",
    "popular_usual": "Popular near places you often go",
    "shares": "Also {terms}",
    "chosen_together": "Often chosen together",
    "fallback": "Recommended for you",
}


class Reason(str):
    """A reason's English text that also carries its code and fields, so the Django
    side can say it in the request's language (it compares and prints as the text)."""

    code: str
    params: dict[str, str]

    def __new__(cls, code: str, **params: str) -> Reason:
        text = TEMPLATES[code].format(**params)
        obj = super().__new__(cls, text)
        obj.code = code
        obj.params = dict(params)
        return obj

    def __reduce__(self):
        return (_reason, (self.code, self.params))


def _reason(code: str, params: dict[str, str]) -> Reason:
    return Reason(code, **params)

PAST_TENSE: dict[str, str] = {
    "view": "viewed",
    "like": "liked",
    "save": "saved",
    "purchase": "bought",
    "share": "shared",
}


def _verb(interaction_type: str | None) -> str:
    return PAST_TENSE.get(str(interaction_type or "").casefold(), "liked")


def _distance(distances: np.ndarray | None, r: int) -> float | None:
    if distances is None:
        return None
    d = float(distances[r])
    return d if np.isfinite(d) else None


def reasons_for(
    contributions: np.ndarray,
    components: Sequence[str],
    *,
    item_names: Sequence[str] | np.ndarray,
    collaborative_sources: np.ndarray | Sequence[int] | None = None,
    collaborative_types: Sequence[str | None] | None = None,
    profile_sources: np.ndarray | Sequence[int] | None = None,
    profile_types: Sequence[str | None] | None = None,
    matching_terms: Sequence[Sequence[str]] | None = None,
    categories: Sequence[str | None] | None = None,
    distances_km: np.ndarray | Sequence[float] | None = None,
    ratings: np.ndarray | Sequence[float] | None = None,
    near_km: float = 10.0,
    high_rating: float = 4.0,
    min_share: float = 0.1,
    max_reasons: int = 3,
    site_name: str = "this site",
    fallback: str | None = None,
    usual_place: bool = False,
) -> list[list[str]]:
    """Reasons per result (list of 1..``max_reasons`` strings, strongest first).

    ``contributions`` is ``blend.Ranking.contributions`` (results × components) and
    ``components`` its names. Per-result evidence arrays, all optional:
    ``collaborative_sources`` / ``profile_sources`` are the user's item index behind
    the result (-1 if none; names come from ``item_names``, indexed by item) and
    ``*_types`` the user's interaction type with it ("save" -> "Because you saved X");
    ``matching_terms`` the interest labels (``ContentModel.matching_terms_for``);
    ``distances_km`` (NaN if unknown); ``ratings`` the item's rating on the site scale.
    ``usual_place``: the distances are from where the user usually goes, not from a
    point they gave (``ItemLocations.usual_point``), so nearness is said without a
    number and without "you" ("Near places you often go", "Popular near places you
    often go": a km from an inferred centre means nothing to the user).
    A component contributing less than ``min_share`` of the result's score is not
    named unless nothing stronger could be phrased.
    """
    contrib = np.asarray(contributions, dtype=np.float64)
    if contrib.ndim != 2 or contrib.shape[1] != len(components):
        raise ValueError("contributions must be results × components")
    if max_reasons < 1:
        raise ValueError("max_reasons must be at least 1")
    n = contrib.shape[0]
    collab_src = None if collaborative_sources is None else np.asarray(collaborative_sources)
    profile_src = None if profile_sources is None else np.asarray(profile_sources)
    dist = None if distances_km is None else np.asarray(distances_km, dtype=np.float64)
    rate = None if ratings is None else np.asarray(ratings, dtype=np.float64)
    for name, arr in (
        ("collaborative_sources", collab_src),
        ("profile_sources", profile_src),
        ("distances_km", dist),
        ("ratings", rate),
        ("matching_terms", matching_terms),
        ("categories", categories),
    ):
        if arr is not None and len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} entries for {n} results")

    def name_of(src: np.ndarray | None, r: int) -> str | None:
        if src is None or int(src[r]) < 0:
            return None
        return str(item_names[int(src[r])])

    known = None if dist is None else [_distance(dist, r) for r in range(n)]

    def near(d: float) -> Reason:
        return Reason("usual_area") if usual_place else Reason("distance", km=f"{d:.1f}")

    def phrase(component: str, r: int) -> str | None:
        d = None if known is None else known[r]
        if component == COLLABORATIVE:
            name = name_of(collab_src, r)
            kind = collaborative_types[r] if collaborative_types is not None else None
            if name is not None:
                return Reason("because", verb=_verb(kind), name=name)
            return Reason("similar_taste")
        if component == PROFILE:
            name = name_of(profile_src, r)
            kind = profile_types[r] if profile_types is not None else None
            return None if name is None else Reason("similar_to", name=name, verb=_verb(kind))
        if component == INTEREST:
            terms = list(matching_terms[r]) if matching_terms is not None else []
            return Reason("interest", term=terms[0]) if terms else None
        if component == CATEGORY:
            label = categories[r] if categories is not None else None
            return None if not label else Reason("category", category=label)
        if component == TRENDING:
            if d is not None and d <= near_km:
                return Reason("trending_usual" if usual_place else "trending_near")
            return Reason("trending", site=site_name)
        if component in (POPULARITY, PRIOR):
            if d is not None and d <= near_km:
                return Reason("popular_usual" if usual_place else "popular_near")
            return Reason("popular", site=site_name)
        if component == RATING:
            if rate is not None and not (np.isfinite(rate[r]) and rate[r] >= high_rating):
                return None
            return Reason("rated")
        if component == PROXIMITY:
            # Distance is a reason only when it is near; farther, it stays a fact
            # (``distance_km``) and the fallback when nothing else can be said.
            return None if d is None or d > near_km else near(d)
        return None

    out: list[list[str]] = []
    orders = np.lexsort((np.broadcast_to(np.arange(contrib.shape[1]), contrib.shape),
                         -contrib), axis=-1).tolist()  # each row's, ties to the first
    values = contrib.tolist()
    for r in range(n):
        total = sum(v for v in values[r] if v > 0)  # in order, as NumPy's for a few
        share = min_share * total
        strong: list[str] = []
        weak: list[str] = []
        for c in orders[r]:
            value = values[r][c]
            if value <= 0 or len(strong) == max_reasons:
                break  # the rest could only follow the reasons kept
            if value < share and strong:
                break  # weaker from here on, and a weak reason only stands in for none
            text = phrase(components[c], r)
            if text is None or text in strong or text in weak:
                continue
            name = getattr(text, "params", {}).get("name")
            if name is not None and any(getattr(t, "params", {}).get("name") == name
                                        for t in strong + weak):
                continue  # "Because you saved X" says it: not "Similar to X" as well
            (strong if value >= share else weak).append(text)
        reasons = (strong or weak[:1])[:max_reasons]
        if not reasons:
            d = None if known is None else known[r]
            reasons = [near(d) if d is not None and (not usual_place or d <= near_km) else
                       (fallback if fallback is not None else Reason("fallback"))]
        out.append(reasons)
    return out
