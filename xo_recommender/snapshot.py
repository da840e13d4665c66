"""Read what training needs from the database as numpy arrays.

Businesses come from the business view (the host's catalogue, mapped); interactions from
the app's table, streamed in chunks through a server-side cursor on PostgreSQL, with the
type turned into a small integer and the time into Unix seconds inside SQL, so that
millions of rows never become millions of model instances.
"""

from __future__ import annotations

import numpy as np
from django.db import connections, router

from xo_recommender.engine.data import Catalogue, Events, UserProfiles
from xo_recommender.models import Interaction, RecBusiness, RecUser

CHUNK_ROWS = 200_000


def _float(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def load_catalogue(*, after_id: int | None = None, limit: int | None = None,
                   active_only: bool = False) -> Catalogue:
    """The business view as engine arrays (ordered by id): all of it for a rebuild, or
    the ``limit`` newest active ones above ``after_id`` (businesses a model never saw)."""
    fields = ("id", "name", "categories", "tags", "latitude", "longitude", "popularity",
              "rating", "is_active")
    qs = RecBusiness.objects.all()
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    if active_only:
        qs = qs.filter(is_active=True)
    if limit is None:
        rows = list(qs.order_by("pk").values_list(*fields))
    else:  # the newest ``limit``, in id order
        rows = list(qs.order_by("-pk").values_list(*fields)[:limit])[::-1]
    if not rows:
        return Catalogue(np.zeros(0, np.int64), [], [], [])
    ids, names, cats, tags, lat, lon, pop, rating, active = zip(*rows, strict=True)

    def text(value) -> str:
        # the artifact joins strings with \x1f: a host value holding one must not split
        return str(value).replace("\x1f", " ")

    def terms(value) -> list[str]:
        return [text(t) for t in value] if isinstance(value, list) else []

    return Catalogue(
        ids=np.array(ids, dtype=np.int64),
        names=[text(n) for n in names],
        categories=[terms(c) for c in cats],
        tags=[terms(t) for t in tags],
        latitudes=_float(lat),
        longitudes=_float(lon),
        popularity=np.nan_to_num(_float(pop), nan=0.0),
        ratings=_float(rating),
        active=np.array([bool(a) for a in active], dtype=bool),
    )


def load_users(user_ids: np.ndarray | None = None) -> UserProfiles:
    """Stated interests and home of the users who have interactions (or of ``user_ids``).

    The learned ranking weighs interest match and distance, so its holdout needs them
    for every user it measures; a user the view does not list gets none.
    """
    qs = RecUser.objects.order_by("pk")
    if user_ids is not None:
        qs = qs.filter(pk__in=[int(u) for u in np.unique(user_ids).tolist()])
    rows = list(qs.values_list("id", "interests", "latitude", "longitude").iterator(
        chunk_size=CHUNK_ROWS))
    if not rows:
        return UserProfiles.empty()
    ids, interests, lat, lon = zip(*rows, strict=True)
    return UserProfiles(
        ids=np.array(ids, dtype=np.int64),
        interests=[[str(t) for t in v] if isinstance(v, list) else [] for v in interests],
        latitudes=_float(lat), longitudes=_float(lon),
    )


def load_interactions(types: tuple[str, ...], user_id: int | None = None) -> Events:
    """Every interaction of a known type (or one user's), as arrays."""
    using = router.db_for_read(Interaction)
    connection = connections[using]
    meta = Interaction._meta
    q = connection.ops.quote_name
    col = {f: q(meta.get_field(f).column) for f in
           ("user", "business", "interaction_type", "weight", "count", "first_seen",
            "last_seen")}

    def epoch(column: str) -> str:
        if connection.vendor == "postgresql":
            return f"EXTRACT(EPOCH FROM {column})::float8"
        return f"(julianday({column}) - 2440587.5) * 86400.0"

    case = " ".join(f"WHEN %s THEN {i}" for i in range(len(types)))
    sql = (
        f"SELECT {col['user']}, {col['business']}, CASE {col['interaction_type']} {case} END, "
        f"{col['weight']}, {col['count']}, {epoch(col['last_seen'])}, "
        f"{epoch(col['first_seen'])} FROM {q(meta.db_table)} "
        f"WHERE {col['interaction_type']} IN ({', '.join(['%s'] * len(types))})"
    )
    params: list = [*types, *types]
    if user_id is not None:
        sql += f" AND {col['user']} = %s"
        params.append(user_id)
    chunks = []
    cursor = connection.chunked_cursor() if user_id is None else connection.cursor()
    with cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            chunks.append(np.array(rows, dtype=np.float64))
    data = np.concatenate(chunks) if chunks else np.zeros((0, 7))
    return Events(
        user_ids=data[:, 0].astype(np.int64),
        item_ids=data[:, 1].astype(np.int64),
        type_codes=data[:, 2].astype(np.int16),
        types=tuple(types),
        weights=data[:, 3].astype(np.float32),
        counts=data[:, 4].astype(np.float32),
        last_seen=data[:, 5].copy(),
        first_seen=data[:, 6].copy(),
    )
