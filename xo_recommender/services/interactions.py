"""Recording interactions: validation, the batched upsert, and cache invalidation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.utils import timezone

from xo_recommender import cache
from xo_recommender.conf import settings as rec_settings
from xo_recommender.exceptions import InvalidArgument, UnknownUser
from xo_recommender.models import MAX_WEIGHT, Interaction, RecUser
from xo_recommender.services._common import bounded, business_pk, user_pk


@dataclass(frozen=True)
class InteractionEvent:
    """One event to record: who did what to which business, how strongly, when."""

    user_id: int
    business_id: int
    interaction_type: str
    weight: float = 1.0
    count: int = 1
    at: datetime | None = None


#: Most times one event may say it happened; a stored count saturates at the column's
#: largest value (``STORED_COUNT_MAX``) rather than fail the write.
MAX_COUNT = 1_000_000
STORED_COUNT_MAX = 2**31 - 1
#: How far ahead of this server's clock an event's ``at`` may be (another machine's clock
#: runs a little ahead). Later is refused: the newest ``last_seen`` wins a row's weight,
#: so one event dated next year would freeze the row's weight and age until then.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def check_values(events: list[InteractionEvent]) -> list[InteractionEvent]:
    """The events with their ids as integers, or ``ValidationError`` (keyed by field) for
    the first bad type, weight, count or id; asks nothing of the database."""
    types = rec_settings.INTERACTION_WEIGHTS
    out = []
    for event in events:
        if not isinstance(event.interaction_type, str) or event.interaction_type not in types:
            raise ValidationError(
                {"interaction_type": f"Unknown interaction type {event.interaction_type!r}; "
                 f"expected one of: {', '.join(types)}."},
                code="invalid_type",
            )
        weight = event.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) \
                or not 0 <= weight <= MAX_WEIGHT:  # also NaN; a huge int is just large
            raise ValidationError(
                {"weight": f"Weight must be a number from 0 to {MAX_WEIGHT:g}, not "
                 f"{weight!r}."[:300]}, code="invalid_weight",
            )
        count = event.count
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise ValidationError({"count": f"Count must be a whole number from 1 to "
                                   f"{MAX_COUNT:,}."}, code="invalid")
        at = event.at
        if at is not None and (not isinstance(at, datetime) or (
                timezone.is_naive(at) if django_settings.USE_TZ else timezone.is_aware(at))):
            # the database refuses the other kind at the write, after the checks
            kind = ("a timezone-aware datetime" if django_settings.USE_TZ
                    else "a naive datetime (USE_TZ is off)")
            raise ValidationError({"at": f"at must be {kind}, not {at!r}."[:300]},
                                  code="invalid")
        if at is not None and at > timezone.now() + MAX_CLOCK_SKEW:
            raise ValidationError({"at": f"at is in the future ({at.isoformat()}); an "
                                   "event is recorded when it has happened."[:300]},
                                  code="invalid")
        try:
            ids = {"user_id": user_pk(event.user_id, "user_id"),
                   "business_id": business_pk(event.business_id)}
        except InvalidArgument as exc:
            raise ValidationError({exc.field: str(exc)}, code="invalid") from None
        out.append(replace(event, weight=float(weight), **ids))
    return out


def _validate(events: list[InteractionEvent]) -> list[InteractionEvent]:
    """``check_values``, then every id known to the host: the events to write (ids as
    integers), or ``ValidationError`` (keyed by field); writes nothing."""
    events = check_values(events)
    for field, model in (("user_id", Interaction.user), ("business_id", Interaction.business)):
        host = model.field.related_model
        wanted = {getattr(e, field) for e in events}
        found = set(host._default_manager.filter(pk__in=wanted).values_list("pk", flat=True))
        missing = wanted - found
        if missing:
            name = field.removesuffix("_id")
            raise ValidationError(
                {field: f"Unknown {name} id(s): {', '.join(map(str, sorted(missing, key=str)))}."},
                code="unknown_" + name,
            )
    return events


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
    events = _validate(events)
    now = timezone.now()
    # Several events of one key in a batch fold into one row first: ON CONFLICT may not
    # touch the same row twice in one statement.
    folded: dict[tuple, list] = {}
    for e in events:
        at = e.at or now
        key = (e.user_id, e.business_id, e.interaction_type)
        if key in folded:
            row = folded[key]
            row[3] = min(row[3] + e.count, STORED_COUNT_MAX)
            row[4] = min(row[4], at)
            if at >= row[5]:
                row[2], row[5] = float(e.weight), at
        else:
            folded[key] = [e.user_id, e.business_id, float(e.weight), e.count, at, at]
    # In key order whatever the batch's order: two writers of the same rows then take
    # their row locks in one order, and cannot deadlock.
    _upsert(sorted(folded.items(), key=lambda item: item[0]))
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
        f"{c['count']} = {earliest}(CAST({table}.{c['count']} AS BIGINT) + EXCLUDED.{c['count']}, "
        f"{STORED_COUNT_MAX}), "
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
    event = check_values([InteractionEvent(user, business, interaction_type, weight, count,
                                           at)])[0]
    record_interactions([event])
    return Interaction.objects.get(
        user_id=event.user_id, business_id=event.business_id, interaction_type=interaction_type
    )


def user_interactions(user_id: Any):
    """The user's interactions, newest first (a queryset, for pagination)."""
    pk = user_pk(user_id)
    if not RecUser.objects.filter(pk=pk).exists():
        raise UnknownUser(f"No user with id {user_id!r}.")
    return Interaction.objects.filter(user_id=pk).order_by("-last_seen", "-pk")
