"""Small helpers shared by the service modules: ids, and the statement timeout."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from django.db import connections, models, router, transaction

from xo_recommender.conf import settings as rec_settings
from xo_recommender.exceptions import InvalidArgument
from xo_recommender.models import Interaction, RecBusiness, RecUser

F = TypeVar("F", bound=Callable[..., Any])


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


#: The ids a PostgreSQL ``bigint`` (and SQLite's integer) holds.
_ID_RANGE = range(-(2**63), 2**63)


def host_id(value: Any, kinds: tuple[type[models.Model], ...], field: str) -> int:
    """The integer id of a row given as an instance of one of ``kinds`` or as its id.

    One spelling per row: ``8``, ``"8"`` and ``np.int64(8)`` are all 8, so a cache key
    or an invalidation built from it always meets the other. An instance of another
    model (a business where a user belongs: arguments swapped), a bool, a float or text
    that is not a whole number raises ``InvalidArgument`` naming ``field``.
    """
    label = kinds[0]._meta.label
    if isinstance(value, models.Model):
        if not isinstance(value, kinds):
            raise InvalidArgument(field, f"{field} must be an instance of {label} or its "
                                  f"id, not of {type(value)._meta.label}")
        value = value.pk
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgument(field, f"{field} must be an instance of {label} or its "
                              f"integer id, not {value!r}"[:300])
    if int(value) not in _ID_RANGE:
        raise InvalidArgument(field, f"{field} id {value} is out of range")
    return int(value)


def host_user_model() -> type[models.Model]:
    return Interaction.user.field.related_model


def host_business_model() -> type[models.Model]:
    return Interaction.business.field.related_model


def user_pk(value: Any, field: str = "user") -> int:
    """``host_id`` of a user: a host user, the recommender's view of one, or an id."""
    return host_id(value, (host_user_model(), RecUser), field)


def business_pk(value: Any, field: str = "business_id") -> int:
    """``host_id`` of a business: a host business, the view of one, or an id."""
    return host_id(value, (host_business_model(), RecBusiness), field)


@contextmanager
def statement_timeout(using: str | None = None) -> Iterator[None]:
    """Bound every query in the block by ``STATEMENT_TIMEOUT_MS`` (PostgreSQL).

    A table held under lock, or a query gone slow, then fails with ``OperationalError``
    (which the API answers 503) instead of holding the request until the web server
    kills it. The timeout is ``SET LOCAL`` in a transaction around the block (the
    caller's, when there is one: its value is restored after), sent with the block's
    first query only: a block that asks nothing of the database (a cache hit) costs
    nothing. Elsewhere than PostgreSQL (or with the setting 0) it does
    nothing.
    """
    using = using or router.db_for_write(Interaction)
    connection = connections[using]
    ms = rec_settings.STATEMENT_TIMEOUT_MS
    if not ms or connection.vendor != "postgresql" or getattr(connection, _ACTIVE, False):
        yield  # off, not PostgreSQL, or already inside a bounded block
        return
    setattr(connection, _ACTIVE, True)
    try:
        with _bounded(connection, using, ms):
            yield
    finally:
        setattr(connection, _ACTIVE, False)


#: Marks a connection already inside :func:`statement_timeout` (nested services).
_ACTIVE = "_xo_recommender_statement_timeout"


@contextmanager
def _bounded(connection: Any, using: str, ms: int) -> Iterator[None]:
    nested = connection.in_atomic_block
    state = {"set": False, "previous": None}

    def set_first(execute, sql, params, many, context):
        if not state["set"]:
            state["set"] = True
            raw = context["cursor"].cursor
            raw.execute("SELECT current_setting('statement_timeout'), "
                        "set_config('statement_timeout', %s, true)", [f"{int(ms)}ms"])
            state["previous"] = raw.fetchone()[0]
        return execute(sql, params, many, context)

    if not nested:
        with transaction.atomic(using=using), connection.execute_wrapper(set_first):
            yield
        return
    # Inside the caller's transaction: no savepoint (our own errors must not mark theirs
    # for rollback), and the caller's value is given back afterwards.
    try:
        with connection.execute_wrapper(set_first):
            yield
    finally:
        # A query of the block that failed (the timeout itself) aborted the caller's
        # transaction: nothing more runs in it, and its rollback undoes the setting.
        if state["set"] and not connection.needs_rollback and not _aborted(connection):
            with connection.cursor() as cursor:
                cursor.cursor.execute("SELECT set_config('statement_timeout', %s, true)",
                                      [state["previous"]])


def _aborted(connection: Any) -> bool:
    """Whether the connection's transaction failed (PostgreSQL refuses all but rollback)."""
    import psycopg

    raw = connection.connection
    return (isinstance(raw, psycopg.Connection)
            and raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR)


def bounded(function: F) -> F:
    """Run ``function`` under :func:`statement_timeout`."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with statement_timeout():
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def bounded_fetch(sql: str, params: list, using: str | None = None) -> list[tuple]:
    """All rows of one read, bounded by ``STATEMENT_TIMEOUT_MS``, in one round trip.

    Outside any transaction on PostgreSQL (as a web request runs), the read is sent as
    ``BEGIN; SET LOCAL statement_timeout; <read>; COMMIT`` in one message (psycopg's
    client-side binding), where :func:`statement_timeout` costs a round trip each for
    the transaction's start, the setting and the commit. Inside a transaction (or
    elsewhere than PostgreSQL) it is an ordinary query under :func:`statement_timeout`.
    """
    using = using or router.db_for_read(Interaction)
    connection = connections[using]
    ms = rec_settings.STATEMENT_TIMEOUT_MS
    if ms and connection.vendor == "postgresql" and not connection.in_atomic_block:
        import psycopg

        connection.ensure_connection()
        raw = connection.connection
        if isinstance(raw, psycopg.Connection) and raw.autocommit:
            inner = psycopg.ClientCursor(raw)
            cursor = (connection.make_debug_cursor(inner) if connection.queries_logged
                      else connection.make_cursor(inner))
            with cursor:
                try:
                    cursor.execute(f"BEGIN; SET LOCAL statement_timeout = {int(ms)}; {sql}; "
                                   "COMMIT", params)
                except Exception:
                    with contextlib.suppress(Exception):
                        raw.rollback()  # the failed read left its transaction open
                    raise
                inner.nextset()  # past BEGIN and SET to the read's rows
                inner.nextset()
                return inner.fetchall()
    with statement_timeout(using), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
