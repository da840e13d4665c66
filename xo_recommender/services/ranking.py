"""Ranking: one page of recommendations for a user, similar and popular businesses."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import router
from django.utils import translation

from xo_recommender import artifacts, cache, reason_text, snapshot
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine import geo
from xo_recommender.engine import newcomers as new_businesses
from xo_recommender.engine.content import normalise_term
from xo_recommender.engine.data import Events
from xo_recommender.engine.model import Query
from xo_recommender.engine.model import Recommendation as Ranked
from xo_recommender.engine.reasons import Reason
from xo_recommender.exceptions import (
    InactiveUser,
    InvalidArgument,
    UnknownBusiness,
    UnknownUser,
)
from xo_recommender.models import RecBusiness, RecUser
from xo_recommender.services import active_flags, newcomers
from xo_recommender.services._common import (
    bounded,
    bounded_fetch,
    business_pk,
    host_business_model,
    statement_timeout,
    user_pk,
)


@dataclass(frozen=True)
class Recommendation:
    """One recommended business: the host's instance, its score, why, and how far."""

    business: Any
    score: float
    reasons: list[str]
    distance_km: float | None = None

    @property
    def business_id(self) -> Any:
        return self.business.pk


def _validated_point(near: Any) -> tuple[float, float] | None:
    if near is None:
        return None
    try:
        lat, lng = near
    except (TypeError, ValueError):
        raise InvalidArgument("near", "near must be a (latitude, longitude) pair") from None
    if any(isinstance(v, bool | str | bytes) for v in (lat, lng)):  # True is not 1°
        raise InvalidArgument("near", "near must be a pair of numbers")
    try:
        return geo.validate_point(lat, lng)
    except ValueError as exc:
        raise InvalidArgument("near", str(exc)) from None


def _validated_page(limit: Any, offset: Any) -> tuple[int, int]:
    maximum = int(rec_settings.MAX_RESULTS)
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(name, f"{name} must be a whole number, not {value!r}")
    if not 1 <= limit <= maximum:
        raise InvalidArgument("limit", f"limit must be between 1 and {maximum}, not {limit}")
    if not 0 <= offset <= 10 * maximum - limit:
        raise InvalidArgument(
            "offset", f"offset must be between 0 and {10 * maximum - limit}, not {offset}")
    return limit, offset


def _validated_radius(radius_km: Any) -> float | None:
    if radius_km is None:
        return None
    if isinstance(radius_km, bool) or not isinstance(radius_km, int | float) \
            or not math.isfinite(radius_km) or radius_km < 0:
        raise InvalidArgument("radius_km",
                              f"radius_km must be a finite number >= 0, not {radius_km!r}")
    return float(radius_km)


def _user_id(user: Any) -> int:
    """The user's id, from a host user (or the recommender's view of one) or an id."""
    return user_pk(user)


def _business_ids(businesses: Any, field: str = "exclude") -> list[int]:
    """Sorted distinct ids of host businesses given as instances or ids."""
    if isinstance(businesses, str | bytes) or not isinstance(businesses, Iterable):
        raise InvalidArgument(field, f"{field} must be a list of businesses or their ids")
    return sorted({business_pk(b, field)
                   for b in businesses})


def _validated_category(category: Any) -> str | None:
    """The category to keep; blank is none (any category), as the API documents."""
    if category is None:
        return None
    if not isinstance(category, str):
        raise InvalidArgument("category", "category must be a string")
    return category if category.strip() else None


def _validated_diversify(diversify: Any) -> bool | None:
    if diversify is None or isinstance(diversify, bool | np.bool_):
        return None if diversify is None else bool(diversify)
    raise InvalidArgument("diversify", "diversify must be True, False or None")


def user_history(user_id: Any) -> Events:
    """The user's stored interactions as engine events (read live: fresh after a write)."""
    return snapshot.load_interactions(tuple(rec_settings.INTERACTION_WEIGHTS), user_id=user_id)


def _user_snapshot(user: Any) -> snapshot.UserSnapshot:
    """The user's view row and live history: one query, under the statement timeout."""
    pk = _user_id(user)
    try:
        sql, params, read = snapshot.user_with_history_query(
            pk, tuple(rec_settings.INTERACTION_WEIGHTS))
    except (TypeError, ValueError, ValidationError):
        found = None
    else:
        found = read(bounded_fetch(sql, params, router.db_for_read(RecUser)))
    if found is None:
        raise UnknownUser(f"No user with id {pk!r}.")
    if not found.user.is_active:
        raise InactiveUser(f"User {pk!r} is not active.")
    return found


def _rank(user: Any, limit: int, offset: int, category: str | None, near: Any,
          radius_km: Any, exclude: Iterable[Any], diversify: bool | None,
          version: int | None = None):
    """Validate, then ask the active model for one page (plus slack); no host rows yet.

    ``version``: the active version as the caller knows it (the cache's), so that a
    loaded model serves without asking the database again."""
    limit, offset = _validated_page(limit, offset)
    point = _validated_point(near)
    radius = _validated_radius(radius_km)
    found = _user_snapshot(user)
    rec_user = found.user
    home = None
    if rec_user.latitude is not None and rec_user.longitude is not None:
        try:
            home = geo.validate_point(rec_user.latitude, rec_user.longitude)
        except ValueError:
            home = None  # a host row with nonsense coordinates is treated as unknown
    if radius is not None and point is None and home is None:
        raise InvalidArgument("radius_km",
                              "radius_km needs a point: lat and lng (near= in Python), as "
                              "this user has no home")
    in_memory = version is not None and artifacts.loaded_version() == version
    with contextlib.nullcontext() if in_memory else statement_timeout():
        version_id, model = artifacts.active_model(version)  # the artifact may be big
    query = Query(
        history=found.history,
        interests=[str(t) for t in rec_user.interests or []],
        location=home, near=point, radius_km=radius, category=category,
        exclude_ids=list(exclude),
        limit=limit + _SLACK, offset=offset,
        diversify=rec_settings.DIVERSIFY if diversify is None else bool(diversify),
        now=time.time(),
    )
    return rec_user, version_id, _with_newcomers(version_id, model, query), limit


def _with_newcomers(version_id: Any, model: Any, query: Query) -> list[Ranked]:
    """The model's page, with the businesses created since it was trained in their place.

    With newcomers to place, the model ranks from the top (``offset`` + ``limit``) so a
    newcomer lands on the same page whatever page is asked for.
    """
    fresh = newcomers.newcomers(version_id, model) if model.params.ranking is not None \
        else None
    point = query.near or query.location
    if fresh is not None and len(fresh):
        fresh = new_businesses.select(
            fresh, category=query.category, point=point, radius_km=query.radius_km,
            exclude_ids=query.exclude_ids,
            known_ids=() if query.history is None else query.history.item_ids)
    if fresh is None or not len(fresh):
        return model.recommend(query)
    depth = query.offset + query.limit
    top = model.recommend(replace(query, offset=0, limit=depth))
    row = model.history_row(query.history, query.now)
    ranked_from, usual = model.ranking_point(query, row)  # as the model's own page
    ranked = new_businesses.rank_newcomers(
        model, fresh, row, interests=query.interests, point=ranked_from,
        near_km=model.params.near_km, usual_place=usual)
    return new_businesses.merge(top, ranked, depth)[query.offset:]


@dataclass(frozen=True)
class PageItem:
    """One business of a page, as the business view shows it at the time of the request."""

    business_id: int
    name: str
    score: float
    reasons: list[str]
    categories: list[str]
    distance_km: float | None


@dataclass(frozen=True)
class RecommendationPage:
    """One page for one user: what ``recommend_for`` and the API both serve."""

    user_id: Any
    model_version: int | None
    items: list[PageItem]
    cached: bool
    #: The page as the caller's :class:`PageRendering` made it when the ranking was
    #: computed, on a hit that lists exactly those businesses (else None): sendable as is.
    body: bytes | None = None


@dataclass(frozen=True)
class PageRendering:
    """How a caller (the API) renders a page, so that a cache hit can send the bytes made
    when its ranking was computed instead of rendering the same page again.

    ``render(page)`` gets the page a hit would serve when none of its businesses went
    inactive (``cached`` True); ``tag`` names the format: a body stored under another
    tag (another renderer, other settings) is not served.
    """

    tag: Any
    render: Callable[[RecommendationPage], bytes]


def _ranked(user: Any, limit: Any, offset: Any, category: Any, near: Any, radius_km: Any,
            exclude: Iterable[Any], diversify: Any,
            rendering: PageRendering | None = None) -> tuple[dict[str, Any], bool]:
    """The model's ranking for one query (plus slack), from the cache when unchanged.

    Each ranked row carries the business's name and categories as the view showed them
    when it was computed (an edit retires the entry through ``business_changed``) and its
    reasons as text (the language is part of the key); whether the business is still
    active is never cached: :func:`_live` checks it on every hit. With ``rendering``, the
    entry also keeps the page that ranking makes, rendered (``body``: tag and bytes).
    """
    user = _user_id(user)
    excluded = _business_ids(exclude)
    category = _validated_category(category)
    diversify = _validated_diversify(diversify)
    params = {"limit": limit, "offset": offset, "category": category,
              "near": list(near) if isinstance(near, tuple | list) else near,
              "radius_km": radius_km, "exclude": excluded, "diversify": diversify}

    def compute(expected_version: Any) -> dict[str, Any]:
        # The history read is bounded by the statement timeout; the page's rows are a
        # primary-key lookup of at most limit + slack businesses.
        rec_user, version, results, _ = _rank(user, limit, offset, category, near, radius_km,
                                               excluded, diversify, expected_version)
        rows = snapshot.page_rows([r.item_id for r in results])
        render = reason_text.renderer()
        ranked = [[r.item_id, r.score, render(r.reasons), r.distance_km,
                   row[0], list(row[1] or [])]
                  for r in results if (row := rows.get(r.item_id)) is not None and row[2]
                  and _in_category(row[1], category)]
        body = None
        if rendering is not None:
            page = RecommendationPage(rec_user.pk, version, _page_items(ranked, limit), True)
            body = [rendering.tag, rendering.render(page)]
        return {"user_id": rec_user.pk, "model_version": version, "ranked": ranked,
                "body": body}

    return cache.cached_answer("rank", user, params, compute, artifacts.active_version_id,
                               items=lambda answer: [row[0] for row in answer["ranked"]],
                               digest=_digest(params))


#: Cache-key digests by the ``repr`` of a query's parameters and language, so that a hit
#: does not serialise and hash them again; forgotten when the recommender's settings
#: change (they are part of the key).
_DIGESTS: dict[str, str] = {}
_MAX_DIGESTS = 4096


def _digest(params: dict[str, Any]) -> str:
    """``cache.params_digest`` of the query's parameters and the ranking settings."""
    remembered = repr((params, translation.get_language()))
    found = _DIGESTS.get(remembered)
    if found is None:
        found = cache.params_digest({**params, **_ranking_settings()})
        if len(_DIGESTS) >= _MAX_DIGESTS:
            _DIGESTS.clear()
        _DIGESTS[remembered] = found
    return found


def _forget_digests(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("XO_RECOMMENDER") or setting in ("LANGUAGE_CODE", "LANGUAGES"):
        _DIGESTS.clear()


setting_changed.connect(_forget_digests, dispatch_uid="xo_recommender.ranking.digests")


def _live(ranked: list, limit: int, *, check: bool = True) -> tuple[list[PageItem], bool]:
    """The first ``limit`` ranked businesses that are listable, and whether that is the
    page unfiltered (none of the first ``limit`` left out).

    Checked on every cache hit: a business deactivated or deleted by any means (the
    ORM, ``queryset.update``, raw SQL in the host) is left out, without relying on
    signals, at once or within ``ACTIVE_CHECK_INTERVAL_MS`` (see ``services/active_flags.py``).
    The page comes up short only when more than ``_SLACK`` of it went inactive since
    the model was built. ``LIVE_ACTIVE_CHECK = False`` skips the check and relies on the
    save/delete signals alone.
    """
    if not (check and rec_settings.LIVE_ACTIVE_CHECK):
        return _page_items(ranked, limit), True
    # the shown businesses; the slack's only when some of those went inactive
    active = active_flags.listable([row[0] for row in ranked[:limit]])
    if len(active) == min(limit, len(ranked)):
        return _page_items(ranked, limit), True
    active |= active_flags.listable([row[0] for row in ranked[limit:]])
    return _page_items([row for row in ranked if row[0] in active], limit), False


def _page_items(ranked: list, limit: int) -> list[PageItem]:
    """The first ``limit`` ranked rows as page items."""
    return [PageItem(item_id, name, round(score, 6), reasons, categories, distance_km)
            for item_id, score, reasons, distance_km, name, categories in ranked[:limit]]


def recommendation_page(
    user: Any,
    limit: int = 10,
    *,
    offset: int = 0,
    category: str | None = None,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
    exclude: Iterable[Any] = (),
    diversify: bool | None = None,
    rendering: PageRendering | None = None,
) -> RecommendationPage:
    """One page of personalised businesses for ``user`` (an instance or its primary key).

    The one ranking path: ``recommend_for`` and the REST API both serve it, with one
    cache. Arguments and errors as ``recommend_for``. A miss runs under the statement
    timeout; a hit asks the database nothing when this process read the page's active
    flags within ``ACTIVE_CHECK_INTERVAL_MS`` (a ranking it computed counts as read).
    With ``rendering``, a hit listing every business its ranking did when computed
    carries that page's rendered ``body``.
    """
    since = time.monotonic()
    answer, cached = _ranked(user, limit, offset, category, near, radius_km, exclude,
                             diversify, rendering)
    if not cached and rec_settings.LIVE_ACTIVE_CHECK and rec_settings.ACTIVE_CHECK_INTERVAL_MS:
        active_flags.learn([row[0] for row in answer["ranked"]], since)  # read just now
    # a ranking computed just now was filtered by the view already: check hits only
    items, unfiltered = _live(answer["ranked"], limit, check=cached)
    body = answer.get("body") if cached and unfiltered and rendering is not None else None
    return RecommendationPage(answer["user_id"], answer["model_version"], items, cached,
                              body[1] if body and body[0] == rendering.tag else None)


def recommend_for(
    user: Any,
    limit: int = 10,
    *,
    offset: int = 0,
    category: str | None = None,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
    exclude: Iterable[Any] = (),
    diversify: bool | None = None,
) -> list[Recommendation]:
    """Personalised businesses for ``user`` (a host user instance or its primary key).

    Scores come from the active model version and the user's *current* interactions,
    so an interaction recorded a moment ago already counts. ``near=(lat, lng)`` ranks
    by distance from that point instead of the user's home; ``radius_km`` keeps only
    businesses within it; ``category`` keeps one category; ``exclude`` drops businesses
    (instances or ids); ``diversify`` re-ranks for variety (default: the setting).

    Raises ``InvalidArgument`` (a ``ValueError``) naming a bad argument,
    ``UnknownUser`` / ``InactiveUser``, and ``ModelNotReady`` before the first rebuild.
    Businesses inactive or deleted now are left out, even from a cached ranking; the
    ranking is cached like the REST answers (versioned: a new interaction, a user or
    business change, or a rebuild retires it). Each result carries the host's instance.
    """
    page = recommendation_page(user, limit, offset=offset, category=category, near=near,
                               radius_km=radius_km, exclude=exclude, diversify=diversify)
    hosts = host_business_model()._default_manager.in_bulk(
        [item.business_id for item in page.items])
    return [Recommendation(hosts[item.business_id], item.score, item.reasons,
                           item.distance_km)
            for item in page.items if item.business_id in hosts]


def recommendation_payload(
    user_id: Any,
    limit: int = 10,
    *,
    offset: int = 0,
    category: str | None = None,
    near: tuple[float, float] | None = None,
    radius_km: float | None = None,
    diversify: bool | None = None,
) -> dict[str, Any]:
    """:func:`recommendation_page` as plain data: ``{"user_id", "recommendations":
    [{business_id, name, score, reasons, categories, distance_km}], "model_version",
    "cached"}`` (the API renders the same page with its serializer)."""
    page = recommendation_page(user_id, limit, offset=offset, category=category, near=near,
                               radius_km=radius_km, diversify=diversify)
    return {"user_id": page.user_id, "recommendations": [asdict(i) for i in page.items],
            "model_version": page.model_version, "cached": page.cached}


def _ranking_settings() -> dict[str, Any]:
    """The settings that shape a ranking at request time: part of every cache key, so a
    deploy that changes them is not answered from entries computed under the old ones."""
    return {"_entry": 2,  # rows hold rendered reasons: never read an older entry's
            "_language": translation.get_language(), "_site": rec_settings.SITE_NAME,
            "_ranking": [rec_settings.BLEND_WEIGHTS, rec_settings.EXCLUDE_INTERACTED_TYPES,
                         rec_settings.INTERACTION_WEIGHTS, rec_settings.GEO_SCALE_KM,
                         rec_settings.DIVERSIFY, rec_settings.DIVERSITY_LAMBDA,
                         rec_settings.MAX_RESULTS]}


#: Extra results asked of the model, to fill the page when some businesses were
#: deactivated or deleted since the model was built.
_SLACK = 5


def _in_category(categories: Any, category: str | None) -> bool:
    """Whether a business's categories *now* include ``category`` (None: any). The model
    filters by the categories it was trained with; a business moved out of one since is
    left out here, so a list never shows one under a category it no longer has (one
    moved into it joins at the next rebuild)."""
    if category is None:
        return True
    key = normalise_term(category)
    return any(normalise_term(str(c)) == key for c in categories or ())


def _business_dicts(results: list, limit: int | None = None,
                    category: str | None = None) -> list[dict]:
    """Similar / popular results as the API's JSON objects, read from the business view
    in one query (inactive or deleted businesses left out, and with ``category``, those
    no longer in it)."""
    rows = RecBusiness.objects.in_bulk([r.item_id for r in results])
    out = []
    for r in results:
        row = rows.get(r.item_id)
        if row is None or not row.is_active or not _in_category(row.categories, category):
            continue
        out.append({"business_id": row.pk, "name": row.name, "score": round(r.score, 6),
                    "reasons": reason_text.render_all(r.reasons),
                    "categories": list(row.categories or []),
                    "distance_km": r.distance_km})
        if limit is not None and len(out) == limit:
            break
    return out


@bounded
def similar_businesses(business_id: Any, limit: int = 10) -> dict[str, Any]:
    """Businesses like this one (the non-personalised "more like this" list).

    The model's neighbours (chosen together, else sharing its terms) come first; the
    businesses created since it was trained follow when they share this one's terms. A
    business the model does not know yet gets the known and new ones sharing its terms.
    """
    limit, _ = _validated_page(limit, 0)
    pk = business_pk(business_id)
    business = snapshot.load_catalogue(only_id=pk)
    if not len(business):
        raise UnknownBusiness(f"No business with id {business_id!r}.")
    version_id, model = artifacts.active_model()
    want = limit + _SLACK
    try:
        neighbours = model.similar(int(pk), want)
    except KeyError:  # added after the last rebuild: only what it is, is known
        results = new_businesses.like_newcomer(
            model, business, newcomers.newcomers(version_id, model), want)
    else:
        results = [Ranked(i, s, [Reason("chosen_together")], None) for i, s in neighbours]
        if len(results) < want:  # the newcomers are read only when they can take part
            results += [replace(r, score=r.score * 1e-3) for r in new_businesses.newcomers_like(
                model, int(pk), newcomers.newcomers(version_id, model), want - len(results),
                [r.item_id for r in results])]
    return {"business_id": int(pk), "model_version": version_id,
            "results": _business_dicts(results, limit)}


@bounded
def popular_businesses(limit: int = 10, *, category: str | None = None, near: Any = None,
                       radius_km: Any = None) -> dict[str, Any]:
    """Popular, well-rated businesses, optionally near a point: what a newcomer sees."""
    limit, _ = _validated_page(limit, 0)
    point = _validated_point(near)
    radius = _validated_radius(radius_km)
    if radius is not None and point is None:
        raise InvalidArgument("radius_km",
                              "radius_km needs a point: lat and lng (near= in Python)")
    category = _validated_category(category)
    version_id, model = artifacts.active_model()
    results = _with_newcomers(version_id, model, Query(
        near=point, radius_km=radius, category=category, limit=limit + _SLACK))
    return {"model_version": version_id,
            "results": _business_dicts(results, limit, category)}
