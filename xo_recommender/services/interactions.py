"""Recording interactions: validation, the batched upsert, and cache invalidation."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.utils import timezone

from xo_recommender import cache
from xo_recommender.conf import settings as rec_settings
from xo_recommender.exceptions import UnknownUser
from xo_recommender.models import Interaction, RecUser
from xo_recommender.services._common import _pk, bounded


@dataclass(frozen=True)
class InteractionEvent:
    """One event to record: who did what to which business, how strongly, when."""

    user_id: int
    business_id: int
    interaction_type: str
    weight: float = 1.0
    count: int = 1
    at: datetime | None = None


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


@bounded
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
        cache.invalidate_users(user_ids)
    transaction.on_commit(lambda: cache.invalidate_users(user_ids), using=using)


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


def user_interactions(user_id: Any):
    """The user's interactions, newest first (a queryset, for pagination)."""
    if not RecUser.objects.filter(pk=_pk(user_id)).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    return Interaction.objects.filter(user_id=_pk(user_id)).order_by("-last_seen", "-pk")
