"""Services: the only place that joins the ORM, the engine and the cache.

Views, API endpoints, signal receivers and tasks call these functions; they own
validation and transactions.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from xo_recommender import artifacts, cache, snapshot
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine import geo
from xo_recommender.engine.data import Events
from xo_recommender.engine.model import Query, Recommender
from xo_recommender.engine.model import Recommendation as Ranked
from xo_recommender.exceptions import (
    InactiveUser,
    RebuildFailed,
    UnknownBusiness,
    UnknownUser,
)
from xo_recommender.models import Interaction, ModelVersion, RecBusiness, RecUser


@dataclass(frozen=True)
class InteractionEvent:
    """One event to record: who did what to which business, how strongly, when."""

    user_id: int
    business_id: int
    interaction_type: str
    weight: float = 1.0
    count: int = 1
    at: datetime | None = None


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


def _validate(events: list[InteractionEvent]) -> None:
    """Raise ``ValidationError`` (keyed by field) for the first bad event; writes nothing."""
    types = rec_settings.INTERACTION_WEIGHTS
    for event in events:
        if event.interaction_type not in types:
            raise ValidationError(
                {"interaction_type": f"Unknown interaction type {event.interaction_type!r}; "
                 f"expected one of: {', '.join(types)}."},
                code="invalid_type",
            )
        weight = event.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) \
                or not math.isfinite(weight) or weight < 0:
            raise ValidationError(
                {"weight": f"Weight must be a finite number >= 0, not {weight!r}."},
                code="invalid_weight",
            )
        if isinstance(event.count, bool) or not isinstance(event.count, int) or event.count < 1:
            raise ValidationError({"count": "Count must be a whole number >= 1."}, code="invalid")
    for field, model in (("user_id", Interaction.user), ("business_id", Interaction.business)):
        host = model.field.related_model
        wanted = {getattr(e, field) for e in events}
        try:
            found = set(host._default_manager.filter(pk__in=wanted).values_list("pk", flat=True))
        except (TypeError, ValueError):
            found = set()
        missing = wanted - found
        if missing:
            name = field.removesuffix("_id")
            raise ValidationError(
                {field: f"Unknown {name} id(s): {', '.join(map(str, sorted(missing, key=str)))}."},
                code="unknown_" + name,
            )


def record_interactions(events: Iterable[InteractionEvent]) -> int:
    """Record many events in one statement; returns how many events were recorded.

    Each (user, business, type) is one row. A repeat adds to ``count``, takes the new
    ``weight`` and moves ``last_seen`` forward; ``first_seen`` keeps the first time. It is
    an ``INSERT … ON CONFLICT DO UPDATE``, so concurrent writers of the same key never
    lose an increment nor fail on the unique constraint (PostgreSQL and SQLite alike).
    Invalid input raises ``ValidationError`` before anything is written.
    """
    events = list(events)
    if not events:
        return 0
    _validate(events)
    now = timezone.now()
    # Several events of one key in a batch fold into one row first: ON CONFLICT may not
    # touch the same row twice in one statement.
    folded: dict[tuple, list] = {}
    for e in events:
        at = e.at or now
        key = (e.user_id, e.business_id, e.interaction_type)
        if key in folded:
            row = folded[key]
            row[3] += e.count
            row[4] = min(row[4], at)
            if at >= row[5]:
                row[2], row[5] = float(e.weight), at
        else:
            folded[key] = [e.user_id, e.business_id, float(e.weight), e.count, at, at]
    _upsert(list(folded.items()))
    _invalidate_users({e.user_id for e in events})
    return len(events)


def _invalidate_users(user_ids: set) -> None:
    """Retire the users' cached answers now and again after the commit.

    Now: a later call in the same transaction sees the new interaction. After the
    commit: an answer computed meanwhile by another process, from the data before the
    commit, is retired too.
    """
    using = router.db_for_write(Interaction)
    if connections[using].in_atomic_block:
        for user_id in user_ids:
            cache.invalidate_user(user_id)
    transaction.on_commit(lambda: [cache.invalidate_user(u) for u in user_ids], using=using)


def _upsert(rows: list) -> None:
    using = router.db_for_write(Interaction)
    connection = connections[using]
    meta = Interaction._meta
    q = connection.ops.quote_name
    f = {name: meta.get_field(name) for name in
         ("user", "business", "interaction_type", "weight", "count", "first_seen", "last_seen")}
    cols = [q(field.column) for field in f.values()]
    table = q(meta.db_table)
    latest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    earliest = "LEAST" if connection.vendor == "postgresql" else "MIN"
    c = {name: q(field.column) for name, field in f.items()}
    placeholders = "(" + ", ".join(["%s"] * len(cols)) + ")"
    sql = (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
        + ", ".join([placeholders] * len(rows))
        + f" ON CONFLICT ({c['user']}, {c['business']}, {c['interaction_type']}) DO UPDATE SET "
        f"{c['count']} = {table}.{c['count']} + EXCLUDED.{c['count']}, "
        f"{c['weight']} = CASE WHEN EXCLUDED.{c['last_seen']} >= {table}.{c['last_seen']} "
        f"THEN EXCLUDED.{c['weight']} ELSE {table}.{c['weight']} END, "
        f"{c['first_seen']} = {earliest}({table}.{c['first_seen']}, EXCLUDED.{c['first_seen']}), "
        f"{c['last_seen']} = {latest}({table}.{c['last_seen']}, EXCLUDED.{c['last_seen']})"
    )
    first, last = f["first_seen"], f["last_seen"]
    params: list = []
    for (user_id, business_id, itype), (_, _, weight, count, first_at, last_at) in rows:
        params += [
            f["user"].get_db_prep_value(user_id, connection),
            f["business"].get_db_prep_value(business_id, connection),
            itype, weight, count,
            first.get_db_prep_value(first_at, connection),
            last.get_db_prep_value(last_at, connection),
        ]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(sql, params)


def record_interaction(
    user: Any,
    business: Any,
    interaction_type: str,
    weight: float = 1.0,
    *,
    count: int = 1,
    at: datetime | None = None,
) -> Interaction:
    """Record that ``user`` did ``interaction_type`` to ``business``; return the stored row.

    ``user`` and ``business`` are host model instances or their primary keys. See
    ``record_interactions`` for the upsert semantics and validation.
    """
    event = InteractionEvent(_pk(user), _pk(business), interaction_type, weight, count, at)
    record_interactions([event])
    return Interaction.objects.get(
        user_id=event.user_id, business_id=event.business_id, interaction_type=interaction_type
    )



# --------------------------------------------------------------------------- recommending


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
        raise ValueError("near must be a (latitude, longitude) pair") from None
    return geo.validate_point(lat, lng)


def _validated_page(limit: Any, offset: Any) -> tuple[int, int]:
    maximum = int(rec_settings.MAX_RESULTS)
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
    if not 1 <= limit <= maximum:
        raise ValueError(f"limit must be between 1 and {maximum}, not {limit}")
    if not 0 <= offset <= 10 * maximum - limit:
        raise ValueError(f"offset must be between 0 and {10 * maximum - limit}, not {offset}")
    return limit, offset


def _validated_radius(radius_km: Any) -> float | None:
    if radius_km is None:
        return None
    if isinstance(radius_km, bool) or not isinstance(radius_km, int | float) \
            or not math.isfinite(radius_km) or radius_km < 0:
        raise ValueError(f"radius_km must be a finite number >= 0, not {radius_km!r}")
    return float(radius_km)


def user_history(user_id: Any) -> Events:
    """The user's stored interactions as engine events (read live: fresh after a write)."""
    return snapshot.load_interactions(tuple(rec_settings.INTERACTION_WEIGHTS), user_id=user_id)


def _rec_user(user: Any) -> RecUser:
    pk = _pk(user)
    try:
        rec_user = RecUser.objects.filter(pk=pk).first()
    except (TypeError, ValueError):
        rec_user = None
    if rec_user is None:
        raise UnknownUser(f"No user with id {pk!r}.")
    if not rec_user.is_active:
        raise InactiveUser(f"User {pk!r} is not active.")
    return rec_user


def _rank(user: Any, limit: int, offset: int, category: str | None, near: Any,
          radius_km: Any, exclude: Iterable[Any], diversify: bool | None):
    """Validate, then ask the active model for one page (plus slack); no host rows yet."""
    limit, offset = _validated_page(limit, offset)
    point = _validated_point(near)
    radius = _validated_radius(radius_km)
    if category is not None and not isinstance(category, str):
        raise ValueError("category must be a string")
    rec_user = _rec_user(user)
    home = None
    if rec_user.latitude is not None and rec_user.longitude is not None:
        try:
            home = geo.validate_point(rec_user.latitude, rec_user.longitude)
        except ValueError:
            home = None  # a host row with nonsense coordinates is treated as unknown
    if radius is not None and point is None and home is None:
        raise ValueError("radius_km needs near=(lat, lng) for a user without a location")
    version_id, model = artifacts.active_model()
    query = Query(
        history=user_history(rec_user.pk),
        interests=[str(t) for t in rec_user.interests or []],
        location=home, near=point, radius_km=radius, category=category,
        exclude_ids=[int(_pk(b)) for b in exclude],
        limit=limit + _SLACK, offset=offset,
        diversify=rec_settings.DIVERSIFY if diversify is None else bool(diversify),
        now=time.time(),
    )
    return rec_user, version_id, model.recommend(query), limit


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

    Raises ``ValueError`` for a bad argument, ``UnknownUser`` / ``InactiveUser``, and
    ``ModelNotReady`` before the first rebuild. The page's businesses are fetched in
    one query; inactive or deleted ones since the last rebuild are left out. The
    ranking is cached like the REST answers (versioned: a new interaction, a user or
    business change, or a rebuild retires it).
    """
    excluded = sorted({int(_pk(b)) for b in exclude})
    params = {"limit": limit, "offset": offset, "category": category,
              "near": list(near) if isinstance(near, tuple | list) else near,
              "radius_km": radius_km, "exclude": excluded, "diversify": diversify}

    def compute(expected_version: Any) -> list[tuple]:
        _, _, results, page = _rank(user, limit, offset, category, near, radius_km, excluded,
                                    diversify)
        return [(r.item_id, r.score, list(r.reasons), r.distance_km) for r in results]

    ranked, _ = cache.cached_answer("py", _pk(user), {**params, **_ranking_settings()},
                                    compute, artifacts.active_version_id,
                                    items=lambda rows: [row[0] for row in rows])
    return _with_host_businesses([Ranked(*row) for row in ranked], limit)


def _ranking_settings() -> dict[str, Any]:
    """The settings that shape a ranking at request time: part of every cache key, so a
    deploy that changes them is not answered from entries computed under the old ones."""
    return {"_ranking": [rec_settings.BLEND_WEIGHTS, rec_settings.EXCLUDE_INTERACTED_TYPES,
                         rec_settings.INTERACTION_WEIGHTS, rec_settings.GEO_SCALE_KM,
                         rec_settings.DIVERSIFY, rec_settings.DIVERSITY_LAMBDA,
                         rec_settings.MAX_RESULTS]}


#: Extra results asked of the model, to fill the page when some businesses were
#: deactivated or deleted since the model was built.
_SLACK = 5


def _with_host_businesses(results: list, limit: int) -> list[Recommendation]:
    business_model = Interaction.business.field.related_model
    hosts = business_model._default_manager.in_bulk([r.item_id for r in results])
    active_field = rec_settings.BUSINESS_FIELDS.get("is_active")
    page = []
    for r in results:
        business = hosts.get(r.item_id)
        if business is None or (active_field and not getattr(business, active_field, True)):
            continue
        page.append(Recommendation(business, r.score, r.reasons, r.distance_km))
        if len(page) == limit:
            break
    return page


def _business_dicts(results: list, limit: int | None = None) -> list[dict]:
    """Results as the API's JSON objects, read from the business view in one query."""
    rows = RecBusiness.objects.in_bulk([r.item_id for r in results])
    out = []
    for r in results:
        row = rows.get(r.item_id)
        if row is None or not row.is_active:
            continue
        out.append({"business_id": row.pk, "name": row.name, "score": round(r.score, 6),
                    "reasons": list(r.reasons), "categories": list(row.categories or []),
                    "distance_km": r.distance_km})
        if limit is not None and len(out) == limit:
            break
    return out


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
    """The REST answer for one user, served from the cache when nothing changed.

    ``{"user_id", "recommendations": [{business_id, name, score, reasons, categories,
    distance_km}], "model_version", "cached"}``. Same arguments and errors as
    ``recommend_for``.
    """
    params = {"limit": limit, "offset": offset, "category": category,
              "near": list(near) if near is not None else None, "radius_km": radius_km,
              "diversify": diversify}

    def compute(expected_version: Any) -> dict[str, Any]:
        rec_user, version, results, page = _rank(user_id, limit, offset, category, near,
                                                 radius_km, (), diversify)
        return {"user_id": rec_user.pk, "recommendations": _business_dicts(results, page),
                "model_version": version}

    payload, cached = cache.cached_answer(
        "rec", _pk(user_id), {**params, **_ranking_settings()}, compute,
        artifacts.active_version_id,
        items=lambda answer: [r["business_id"] for r in answer["recommendations"]])
    return {**payload, "cached": cached}


def similar_businesses(business_id: Any, limit: int = 10) -> dict[str, Any]:
    """Businesses like this one (the non-personalised "more like this" list)."""
    limit, _ = _validated_page(limit, 0)
    if not RecBusiness.objects.filter(pk=_pk(business_id)).exists():
        raise UnknownBusiness(f"No business with id {business_id!r}.")
    version_id, model = artifacts.active_model()
    try:
        neighbours = model.similar(int(_pk(business_id)), limit + _SLACK)
    except KeyError:
        neighbours = []  # added after the last rebuild: no neighbours known yet
    results = [Ranked(i, s, ["Often chosen together"], None) for i, s in neighbours]
    return {"business_id": int(_pk(business_id)), "model_version": version_id,
            "results": _business_dicts(results, limit)}


def popular_businesses(limit: int = 10, *, category: str | None = None, near: Any = None,
                       radius_km: Any = None) -> dict[str, Any]:
    """Popular, well-rated businesses, optionally near a point: what a newcomer sees."""
    limit, _ = _validated_page(limit, 0)
    point = _validated_point(near)
    radius = _validated_radius(radius_km)
    if radius is not None and point is None:
        raise ValueError("radius_km needs near=(lat, lng)")
    version_id, model = artifacts.active_model()
    results = model.recommend(Query(near=point, radius_km=radius, category=category,
                                    limit=limit + _SLACK))
    return {"model_version": version_id, "results": _business_dicts(results, limit)}


def sync_user(user_id: Any) -> dict[str, Any]:
    """The host changed this user: check they exist, forget what was cached for them."""
    rec_user = RecUser.objects.filter(pk=_pk(user_id)).first()
    if rec_user is None:
        raise UnknownUser(f"No user with id {user_id!r}.")
    cache.invalidate_user(rec_user.pk)
    return {"status": "synced", "user_id": rec_user.pk}


def sync_business(business_id: Any) -> dict[str, Any]:
    """The host changed this business: check it exists, retire the lists that show it."""
    if not RecBusiness.objects.filter(pk=_pk(business_id)).exists():
        raise UnknownBusiness(f"No business with id {business_id!r}.")
    cache.invalidate_business(_pk(business_id))
    return {"status": "synced", "business_id": int(_pk(business_id))}


def clear_user_cache(user_id: Any) -> dict[str, Any]:
    """Forget everything cached for this user (their next answer is computed afresh)."""
    if not RecUser.objects.filter(pk=_pk(user_id)).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    cache.invalidate_user(_pk(user_id))
    return {"status": "cleared", "user_id": _pk(user_id)}


def user_interactions(user_id: Any):
    """The user's interactions, newest first (a queryset, for pagination)."""
    if not RecUser.objects.filter(pk=_pk(user_id)).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    return Interaction.objects.filter(user_id=_pk(user_id)).order_by("-last_seen", "-pk")


# ------------------------------------------------------------------------------ rebuilding


def rebuild(*, progress: Callable[[str], None] | None = None) -> ModelVersion:
    """Train a new model version beside the live one and make it active atomically.

    On failure the new version is marked failed, the previous one keeps serving, and
    ``RebuildFailed`` is raised. Old versions beyond ``KEEP_VERSIONS`` are deleted.
    """
    say = progress or (lambda message: None)
    params = artifacts.engine_params()
    version = ModelVersion.objects.create(params=params.to_dict())
    started = time.perf_counter()
    try:
        say("Reading businesses")
        catalogue = snapshot.load_catalogue()
        say(f"Reading interactions ({len(catalogue.ids):,} businesses)")
        events = snapshot.load_interactions(tuple(params.type_weights))
        say(f"Training on {len(events):,} interactions")
        model = Recommender.fit(catalogue, events, params, now=time.time())
        payload = model.to_bytes()
        say(f"Saving version {version.pk} ({len(payload) / 2**20:.1f} MiB)")
        version.artifact = payload
        version.fit_seconds = time.perf_counter() - started  # read + train + serialise
        version.n_users = model.stats["users"]
        version.n_businesses = model.stats["items"]
        version.n_interactions = model.stats["interactions"]
        version.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        version.status = ModelVersion.Status.READY
        version.finished_at = timezone.now()
        _activate(version)
    except Exception as exc:
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}", is_active=False,
        )
        raise RebuildFailed(f"Rebuild of version {version.pk} failed: {exc}") from exc
    _prune(int(rec_settings.KEEP_VERSIONS))
    return version


def _activate(version: ModelVersion) -> None:
    """Save ``version`` and flip the active pointer to it in one transaction."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(
                    is_active=False)
                version.is_active = True
                version.save()
                transaction.on_commit(lambda: artifacts.publish_active(version.pk))
            return
        except IntegrityError:  # another rebuild switched at the same moment: go again
            version.is_active = False
            if attempt == 2:
                raise


def _prune(keep: int) -> None:
    keep_ids = list(ModelVersion.objects.filter(status=ModelVersion.Status.READY)
                    .order_by("-pk").values_list("pk", flat=True)[:max(keep, 1)])
    (ModelVersion.objects.filter(is_active=False)
     .exclude(pk__in=keep_ids).exclude(status=ModelVersion.Status.BUILDING).delete())


# -------------------------------------------------------------------------------- health


def _timed(check: Callable[[], Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
        status = "up"
    except Exception as exc:  # a health check reports any failure, it never raises
        detail, status = f"{type(exc).__name__}: {exc}", "down"
    result = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail not in (None, True):
        result["detail"] = detail
    return result


def health() -> tuple[bool, dict[str, Any]]:
    """``(healthy, report)``: database, cache and broker with status and latency.

    Healthy when every part in ``HEALTH_REQUIRED`` is up; the others are reported (a
    cache that is down means slower answers, not failed ones: "degraded").
    """
    from xo_recommender.tasks import broker_configured

    def database():
        with connections[router.db_for_read(ModelVersion)].cursor() as cursor:
            cursor.execute("SELECT 1")
        return None

    def cache_check():
        ok, _ = cache.healthy()
        if not ok:
            raise ConnectionError("cache unreachable")

    def broker():
        if not broker_configured():
            return "no broker configured: tasks run inline"
        from celery import current_app

        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return None

    parts = {"database": _timed(database), "cache": _timed(cache_check),
             "broker": _timed(broker)}
    if parts["cache"]["status"] == "down":
        parts["cache"]["status"] = "degraded"
    required = set(rec_settings.HEALTH_REQUIRED)
    healthy = all(parts[name]["status"] == "up" for name in required if name in parts)
    try:
        version = artifacts.active_version_id() if parts["database"]["status"] == "up" else None
    except Exception:
        version = None
    report = {"status": "ok" if healthy else "unavailable", **parts, "model_version": version}
    return healthy, report
