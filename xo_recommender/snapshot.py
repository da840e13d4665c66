"""Read what training needs from the database as numpy arrays.

Businesses come from the business view (the host's catalogue, mapped); interactions from
the app's table, streamed in chunks through a server-side cursor on PostgreSQL, with the
type turned into a small integer and the time into Unix seconds inside SQL, so that
millions of rows never become millions of model instances.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connections, router

from xo_recommender.engine.data import Catalogue, Events, UserProfiles, known_popularity
from xo_recommender.models import Interaction, RecBusiness, RecUser

CHUNK_ROWS = 200_000


def _float(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def load_catalogue(*, after_id: int | None = None, limit: int | None = None,
                   active_only: bool = False, only_id: int | None = None) -> Catalogue:
    """The business view as engine arrays (ordered by id): all of it for a rebuild, the
    ``limit`` newest active ones above ``after_id`` (businesses a model never saw), or
    the one business ``only_id`` (empty when there is none)."""
    fields = ("id", "name", "categories", "tags", "latitude", "longitude", "popularity",
              "rating", "is_active")
    qs = RecBusiness.objects.all()
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    if only_id is not None:
        qs = qs.filter(pk=only_id)
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
        popularity=known_popularity(_float(pop)),  # NaN and infinite ones: 0
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


def _interaction_select(connection, types: tuple[str, ...], alias: str) -> tuple[str, list]:
    """The columns an ``Events`` row needs, from the interaction table as ``alias``: user,
    business, type code, weight, count, last and first time in Unix seconds."""
    meta = Interaction._meta
    q = connection.ops.quote_name
    col = {f: f"{alias}.{q(meta.get_field(f).column)}" for f in
           ("user", "business", "interaction_type", "weight", "count", "first_seen",
            "last_seen")}

    def epoch(column: str) -> str:
        if connection.vendor == "postgresql":
            return f"EXTRACT(EPOCH FROM {column})::float8"
        return f"(julianday({column}) - 2440587.5) * 86400.0"

    case = " ".join(f"WHEN %s THEN {i}" for i in range(len(types)))
    return (f"{col['user']}, {col['business']}, CASE {col['interaction_type']} {case} END, "
            f"{col['weight']}, {col['count']}, {epoch(col['last_seen'])}, "
            f"{epoch(col['first_seen'])}"), list(types)


def _type_filter(connection, types: tuple[str, ...], alias: str) -> tuple[str, list]:
    column = connection.ops.quote_name(Interaction._meta.get_field("interaction_type").column)
    return f"{alias}.{column} IN ({', '.join(['%s'] * len(types))})", list(types)


def _events(chunks: list[np.ndarray], types: tuple[str, ...]) -> Events:
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


def load_interactions(types: tuple[str, ...], user_id: int | None = None) -> Events:
    """Every interaction of a known type (or one user's), as arrays."""
    using = router.db_for_read(Interaction)
    connection = connections[using]
    q = connection.ops.quote_name
    columns, params = _interaction_select(connection, types, "i")
    where, where_params = _type_filter(connection, types, "i")
    sql = f"SELECT {columns} FROM {q(Interaction._meta.db_table)} i WHERE {where}"
    params += where_params
    if user_id is not None:
        sql += f" AND i.{q(Interaction._meta.get_field('user').column)} = %s"
        params.append(user_id)
    chunks = []
    cursor = connection.chunked_cursor() if user_id is None else connection.cursor()
    with cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            chunks.append(np.array(rows, dtype=np.float64))
    return _events(chunks, types)


@dataclass(frozen=True)
class UserSnapshot:
    """One user as a request sees them: their row in the user view and their history."""

    user: RecUser
    history: Events


def user_with_history_query(user_id: Any, types: tuple[str, ...]
                            ) -> tuple[str, list, Callable[[list[tuple]], UserSnapshot | None]]:
    """One query for a user's view row and all their interactions of ``types`` (a left
    join: a user without any still gets a row), and how to read its rows.

    ``user_id`` goes through the view's primary key field (a value it cannot take
    raises ``TypeError`` / ``ValueError``, as a filter would); identifiers through
    ``quote_name``. The caller runs it (under its statement timeout).
    """
    using = router.db_for_read(RecUser)
    connection = connections[using]
    q = connection.ops.quote_name
    meta = RecUser._meta
    pk = meta.pk.get_db_prep_value(meta.pk.get_prep_value(user_id), connection)
    fields = [meta.get_field(f) for f in ("id", "interests", "latitude", "longitude",
                                          "is_active")]
    user_columns = ", ".join(f"u.{q(f.column)}" for f in fields)
    columns, params = _interaction_select(connection, types, "i")
    where, where_params = _type_filter(connection, types, "i")
    user_fk = q(Interaction._meta.get_field("user").column)
    sql = (f"SELECT {user_columns}, {columns} FROM {q(meta.db_table)} u "
           f"LEFT JOIN {q(Interaction._meta.db_table)} i "
           f"ON i.{user_fk} = u.{q(meta.pk.column)} AND {where} "
           f"WHERE u.{q(meta.pk.column)} = %s")
    params += [*where_params, pk]
    n_user = len(fields)

    def read(rows: list[tuple]) -> UserSnapshot | None:
        if not rows:
            return None
        values = [f.to_python(f.from_db_value(v, None, connection)
                              if hasattr(f, "from_db_value") else v)
                  for f, v in zip(fields, rows[0][:n_user], strict=True)]
        user = RecUser(**{f.attname: v for f, v in zip(fields, values, strict=True)})
        history = [row[n_user:] for row in rows if row[n_user] is not None]
        chunks = [np.array(history, dtype=np.float64)] if history else []
        return UserSnapshot(user, _events(chunks, types))

    return sql, params, read


def page_rows(ids: list[int]) -> dict[int, tuple[str, list, bool]]:
    """``{id: (name, categories, is_active)}`` of these businesses in the business view,
    in one primary-key query (plain SQL: it runs on every uncached page)."""
    if not ids:
        return {}
    using = router.db_for_read(RecBusiness)
    connection = connections[using]
    q = connection.ops.quote_name
    meta = RecBusiness._meta
    fields = [meta.get_field(f) for f in ("id", "name", "categories", "is_active")]
    sql = (f"SELECT {', '.join(q(f.column) for f in fields)} FROM {q(meta.db_table)} "
           f"WHERE {q(meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [int(i) for i in ids])
        rows = cursor.fetchall()
    _, name, categories, active = fields
    return {int(pk): (label, categories.from_db_value(cats, None, connection),
                      active.to_python(flag))
            for pk, label, cats, flag in rows}
