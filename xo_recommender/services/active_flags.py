"""Which businesses a cache hit may list: the host's active flags, remembered per process.

A cached ranking never stores whether its businesses are active: a business deactivated
or deleted without a Django signal (``queryset.update``, raw SQL) must still leave every
page within ``ACTIVE_CHECK_INTERVAL_MS``. Each process remembers the flags of the
businesses it has shown, with the time of the read that gave them, and a hit trusts a
flag read at most that long ago (a read's clock starts before its query).

With ``ACTIVE_CHECK_BACKGROUND`` (the default) a thread of the process reads them again
before they reach that age, so a hit asks the database nothing: a hit reads only a
business this process has never shown, or flags the thread failed to keep young (it
stopped, or the database is slow), and so the interval holds whatever the thread does.
Without the thread, the reads ride on the hits, spread a slice at a time.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterable

from django.db import connections, router

from xo_recommender.conf import settings as rec_settings
from xo_recommender.services._common import host_business_model, statement_timeout

logger = logging.getLogger("xo_recommender.services")

#: Placeholders per ``IN`` list where ids cannot travel as one array (SQLite's limit).
_IN_CHUNK = 5000


def active_ids(ids: Iterable[int], using: str | None = None) -> set[int]:
    """Which of ``ids`` are active in the host's business table right now.

    Primary-key lookups on the host table in plain SQL (no view aggregate, no model
    instances), read past any filtering default manager. A NULL flag counts as active, as
    in the view. Identifiers go through ``quote_name``; on PostgreSQL the ids travel as
    one array literal (a text parameter: the refresher sends thousands), elsewhere in
    chunks of placeholders.
    """
    ids = [int(i) for i in ids]
    if not ids:
        return set()
    business_model = host_business_model()
    meta = business_model._meta
    connection = connections[using or router.db_for_read(business_model)]
    q = connection.ops.quote_name
    field = rec_settings.BUSINESS_FIELDS.get("is_active")
    columns = q(meta.pk.column) + (f", {q(meta.get_field(field).column)}" if field else "")
    select = f"SELECT {columns} FROM {q(meta.db_table)} WHERE {q(meta.pk.column)}"
    if connection.vendor == "postgresql":  # one array literal: the driver dumps a list
        batches = [(f"{select} = ANY(CAST(%s AS bigint[]))",  # of ints one by one
                    ["{" + ",".join(map(str, ids)) + "}"])]
    else:
        batches = [(f"{select} IN ({', '.join(['%s'] * len(chunk))})", chunk)
                   for chunk in (ids[i:i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK))]
    rows = []
    with connection.cursor() as cursor:
        for sql, params in batches:
            cursor.execute(sql, params)
            rows += cursor.fetchall()
    if not field:
        return {row[0] for row in rows}
    return {pk for pk, flag in rows if flag is None or bool(flag)}


class ActiveFlags:
    """This process's memory of which businesses were listable when last read.

    The ids the process has shown are kept in ``SLICES`` slices (by id), each with the
    time its flags were read; an id not seen before is read at once. A slice older than
    the interval is read again before a hit trusts it.

    The refresher thread reads every slice again once the oldest is ``REFRESH_AT`` of
    the interval old, in one query, outside the lock (hits go on meanwhile, on the flags
    read before, still young enough). Without it, a hit also reads the oldest slice once it
    is older than ``(SLICES - 1) / SLICES`` of the interval, so that the reads are spread
    over requests rather than one read of everything stalling one request and those
    queued behind it. A thread with no hit for ``IDLE_SECONDS`` ends; the next hit starts
    another.
    """

    SLICES = 8
    #: Ids remembered at most; beyond, the memory starts again from the page asked.
    MAX_IDS = 100_000
    REFRESH_AT = 0.75
    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.memory: dict[str, tuple[list[float], list[dict[int, bool]]]] = {}
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.used_at = -math.inf

    def listable(self, ids: list[int], interval: float, background: bool = False) -> set[int]:
        """Which of ``ids`` are listable, by flags read at most ``interval`` s ago."""
        using = router.db_for_read(host_business_model())
        slices = self.SLICES
        with self.lock:  # one reader at a time: the others then find the flags fresh
            now = time.monotonic()
            self.used_at = now
            refreshed = background and self._refresher_running()
            read_at, flags = self.memory.get(using) or self._empty(using)
            if refreshed:  # the usual hit: every flag known and young enough
                young, found = now - interval, set()
                for i in ids:
                    k = i % slices
                    flag = flags[k].get(i) if read_at[k] >= young else None
                    if flag is None:
                        break
                    if flag:
                        found.add(i)
                else:
                    return found
            if sum(map(len, flags)) > self.MAX_IDS:
                read_at, flags = self._empty(using)
            due = {i % slices for i in ids if now - read_at[i % slices] > interval}
            if not refreshed:
                oldest = min(range(slices), key=read_at.__getitem__)
                if now - read_at[oldest] > interval * (slices - 1) / slices:
                    due.add(oldest)
            wanted = {i for k in due for i in flags[k]}
            wanted.update(i for i in ids if i % slices in due or i not in flags[i % slices])
            if wanted:
                if refreshed:
                    logger.debug("Active flags read by a hit: %s ids", len(wanted))
                active = self._read(wanted, using)  # one query at most
                for k in due:
                    flags[k] = {}
                    read_at[k] = now
                for i in wanted:
                    flags[i % slices][i] = i in active
            return {i for i in ids if flags[i % slices][i]}

    def learn(self, ids: Iterable[int], since: float) -> None:
        """``ids`` were read active from the view after ``since`` (a computed ranking):
        remembered as listable where that is no older than their slice's own read."""
        using = router.db_for_read(host_business_model())
        with self.lock:
            read_at, flags = self.memory.get(using) or self._empty(using)
            for i in ids:
                k = i % self.SLICES
                if not flags[k] and since > read_at[k]:  # nothing read there yet
                    read_at[k] = since
                if since >= read_at[k]:
                    flags[k][i] = True

    def _empty(self, using: str) -> tuple[list[float], list[dict[int, bool]]]:
        self.memory[using] = ([-math.inf] * self.SLICES, [{} for _ in range(self.SLICES)])
        return self.memory[using]

    @staticmethod
    def _read(ids: Iterable[int], using: str) -> set[int]:
        with statement_timeout(using):  # a locked host table answers 503, never hangs
            return active_ids(ids, using)

    def forget(self) -> None:
        with self.lock:
            self.memory.clear()

    def stop(self) -> None:
        """End the refresher, if any, and wait for it (tests: its connection closes)."""
        with self.lock:
            thread = self.thread
        if thread is not None:
            self.stopping.set()
            thread.join(timeout=30)
            self.stopping.clear()

    # ---------------------------------------------------------------- the refresher

    def _refresher_running(self) -> bool:
        """Whether the thread runs (started now if not; caller holds the lock)."""
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._refresh, daemon=True,
                                           name="xo_recommender active flags")
            self.thread.start()
        return True

    def _next(self, interval: float) -> tuple[float, tuple[str, list[int], list[int]] | None]:
        """``(now, (database, its slices, their ids))`` once the oldest slice is due for
        a read, else ``(seconds to wait, None)``. Every slice of that database is read
        with it, in one query: after one round, the thread reads each database once
        per ``REFRESH_AT`` of the interval."""
        with self.lock:
            now = time.monotonic()
            due = [(read_at[k], using) for using, (read_at, flags) in self.memory.items()
                   for k in range(self.SLICES) if flags[k]]
            if not due:
                return interval * self.REFRESH_AT, None
            read, using = min(due)
            wait = read + interval * self.REFRESH_AT - now
            if wait > 0:
                return wait, None
            flags = self.memory[using][1]
            slices = [k for k in range(self.SLICES) if flags[k]]
            return now, (using, slices, [i for k in slices for i in flags[k]])

    def _refresh(self) -> None:
        """The thread: keep every slice younger than the interval while hits come."""
        try:
            while True:
                interval = float(rec_settings.ACTIVE_CHECK_INTERVAL_MS or 0) / 1000
                if (interval <= 0 or not rec_settings.ACTIVE_CHECK_BACKGROUND
                        or time.monotonic() - self.used_at > self.IDLE_SECONDS
                        or self.stopping.is_set()):
                    return
                when, due = self._next(interval)
                if due is None:
                    self.stopping.wait(min(when, interval / self.SLICES))
                    continue
                started, (using, slices, ids) = when, due
                try:
                    connections[using].close_if_unusable_or_obsolete()  # as a request
                    active = self._read(ids, using)
                    # and closed after it as after a request: with CONN_MAX_AGE 0 the
                    # thread holds no connection between rounds (nor when a test
                    # database is dropped)
                    connections[using].close_if_unusable_or_obsolete()
                except Exception as exc:  # the hits read themselves meanwhile
                    logger.warning("Active flags not refreshed (hits read them): %s", exc)
                    connections[using].close()
                    self.stopping.wait(interval)
                    continue
                with self.lock:
                    read_at, flags = self.memory.get(using) or self._empty(using)
                    fresh = {k: {} for k in slices if read_at[k] < started}
                    for i in ids:  # ids first seen meanwhile: read when next asked for
                        if i % self.SLICES in fresh:
                            fresh[i % self.SLICES][i] = i in active
                    for k, slice_flags in fresh.items():  # unless read again meanwhile
                        flags[k] = slice_flags
                        read_at[k] = started
        finally:
            with self.lock:
                if self.thread is threading.current_thread():
                    self.thread = None
            connections.close_all()  # this thread's connections only


active_flags = ActiveFlags()


def _after_fork() -> None:
    """A forked child (a preloading server's worker) has no refresher and a fresh lock."""
    active_flags.lock = threading.Lock()
    active_flags.stopping = threading.Event()
    active_flags.thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def forget_active_flags() -> None:
    """Drop this process's memory of active flags and end its refresher (tests: a
    rolled-back database hands the same ids out again)."""
    active_flags.stop()
    active_flags.forget()


def listable(ids: list[int]) -> set[int]:
    """Which of ``ids`` a cache hit may list: active now (``ACTIVE_CHECK_INTERVAL_MS``
    0), or when this process last read them, at most that many milliseconds ago."""
    interval = float(rec_settings.ACTIVE_CHECK_INTERVAL_MS or 0) / 1000
    if interval <= 0:
        return active_ids(ids)
    return active_flags.listable(ids, interval, bool(rec_settings.ACTIVE_CHECK_BACKGROUND))


def learn(ids: Iterable[int], since: float) -> None:
    """A ranking computed from the view after ``since`` listed ``ids``: they were active."""
    active_flags.learn(ids, since)
