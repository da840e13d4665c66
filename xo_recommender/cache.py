"""Result cache: versioned entries, a stampede guard, and no failure when the cache is down.

An answer is stored under a key made of the user and the query parameters, together
with a *stamp*: the active model version, a catalogue generation and the user's
generation (bumped when the user or their interactions change), and the businesses it
lists. A read fetches the entry, the version and both generations in one round trip
(``get_many``) and serves the entry if its stamp is current. Invalidation is an
increment of a small counter, never a wildcard delete; stale entries are overwritten or
expire with ``CACHE_TIMEOUT``.

A business change bumps the catalogue generation *and* records which business it was
(``…:catalogue:change:<generation>``). An entry whose catalogue generation is behind is
still served when none of the changed businesses is in it (one more ``get_many`` for
the change records, and the entry is re-stamped): a business edit retires exactly the
answers that list it. A missing record, or more than ``MAX_CHANGES`` since the entry,
retires the entry: unknown means stale.

Every cache call is guarded: with Redis down or unreachable the answer is computed as if
it had missed, a warning is logged, and ``healthy()`` reports the cache degraded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches

from xo_recommender.conf import settings as rec_settings

logger = logging.getLogger("xo_recommender.cache")

PREFIX = "xo_rec"
CATALOGUE_GENERATION = f"{PREFIX}:gen:catalogue"
#: The active model version, published on every switch. It lives only a few seconds so
#: that processes with a private cache (local memory) re-read it from the database soon.
MODEL_VERSION = f"{PREFIX}:model:active"
MODEL_VERSION_SECONDS = 5
LOCK_SECONDS = 10
WAIT_SECONDS = 2.0
#: Most catalogue changes an entry may be checked against before it is retired instead.
MAX_CHANGES = 50
ALL_BUSINESSES = "*"


def _cache():
    return caches[rec_settings.CACHE_ALIAS]


def user_generation_key(user_id: Any) -> str:
    return f"{PREFIX}:gen:user:{user_id}"


def _guarded(operation: str, default: Any, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # any backend error: serve without the cache
        logger.warning("Recommendation cache unavailable during %s: %s", operation, exc)
        return default


def read(key: str) -> Any:
    """``cache.get`` that answers None when the cache is down."""
    return _guarded("read", None, lambda: _cache().get(key))


def write(key: str, value: Any, timeout: int | None) -> None:
    """``cache.set`` that does nothing when the cache is down."""
    _guarded("write", None, lambda: _cache().set(key, value, timeout=timeout))


def _bump(key: str) -> None:
    cache = _cache()

    def incr():
        try:
            cache.incr(key)
        except ValueError:  # missing: start a new counter (add is atomic)
            if not cache.add(key, 1, timeout=None):
                cache.incr(key)

    _guarded("invalidate", None, incr)


def invalidate_user(user_id: Any) -> None:
    """Everything cached for this user stops being served (their next answer is fresh)."""
    _bump(user_generation_key(user_id))


def _change_key(generation: int) -> str:
    return f"{PREFIX}:catalogue:change:{generation}"


def _record_change(what: Any) -> None:
    cache = _cache()

    def bump_and_record():
        try:
            generation = cache.incr(CATALOGUE_GENERATION)
        except ValueError:
            generation = 1 if cache.add(CATALOGUE_GENERATION, 1, timeout=None) \
                else cache.incr(CATALOGUE_GENERATION)
        cache.set(_change_key(generation), what,
                  timeout=max(int(rec_settings.CACHE_TIMEOUT), 60) * 2)

    _guarded("invalidate", None, bump_and_record)


def invalidate_business(business_id: Any) -> None:
    """Answers that list this business stop being served (the others stay)."""
    _record_change(int(business_id))


def invalidate_catalogue() -> None:
    """Every cached answer stops being served."""
    _record_change(ALL_BUSINESSES)


def _unaffected(cache: Any, entry: dict, catalogue_now: int) -> bool:
    """Whether no business changed since ``entry`` was stamped is one it lists."""
    since = entry["stamp"][1]
    listed = entry.get("items")
    if listed is None or not 0 < catalogue_now - since <= MAX_CHANGES:
        return False
    keys = [_change_key(g) for g in range(since + 1, catalogue_now + 1)]
    changes = _guarded("read changes", {}, lambda: cache.get_many(keys))
    if len(changes) != len(keys) or ALL_BUSINESSES in changes.values():
        return False
    return not set(changes.values()) & set(listed)


def publish_model_version(version_id: int) -> None:
    write(MODEL_VERSION, version_id, MODEL_VERSION_SECONDS)


def cached_answer(
    kind: str,
    user_id: Any,
    params: dict[str, Any],
    compute: Callable[[Any], Any],
    active_version: Callable[[], Any],
    items: Callable[[Any], list[int]] | None = None,
) -> tuple[Any, bool]:
    """``(answer, was_cached)``; ``compute(model_version)`` runs on a miss.

    ``active_version()`` is asked only when the cache does not know the active model
    version; ``items(answer)`` lists the business ids an answer shows, so that a change
    to another business leaves it cached (without it, any business change retires it).
    One computation per entry at a time across processes: a miss takes a short lock
    (``cache.add``); others wait up to ``WAIT_SECONDS`` for the answer, then compute
    themselves rather than fail.
    """
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    key = f"{PREFIX}:{kind}:u{user_id}:{digest[:20]}"
    user_gen = user_generation_key(user_id)
    cache = _cache()
    found = _guarded("read", None,
                     lambda: cache.get_many([key, MODEL_VERSION, CATALOGUE_GENERATION, user_gen]))
    if found is None:  # cache down
        return compute(active_version()), False
    version = found.get(MODEL_VERSION)
    if version is None:
        version = active_version()
        if version is not None:
            publish_model_version(version)
    stamp = [version, found.get(CATALOGUE_GENERATION, 0), found.get(user_gen, 0)]
    entry = found.get(key)
    if entry is not None and entry.get("stamp") == stamp:
        return entry["answer"], True
    if (entry is not None and entry["stamp"][0::2] == stamp[0::2]
            and _unaffected(cache, entry, stamp[1])):
        write(key, {**entry, "stamp": stamp}, int(rec_settings.CACHE_TIMEOUT))
        return entry["answer"], True
    if version is None:
        return compute(None), False  # no model yet: compute raises the clear error
    lock = f"{key}:lock:{version}:{stamp[1]}:{stamp[2]}"
    if not _guarded("lock", True, lambda: cache.add(lock, 1, timeout=LOCK_SECONDS)):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.02)
            entry = read(key)
            if entry is not None and entry.get("stamp") == stamp:
                return entry["answer"], True
    try:
        answer = compute(version)
        entry = {"stamp": stamp, "answer": answer,
                 "items": None if items is None else sorted(items(answer))}
        write(key, entry, int(rec_settings.CACHE_TIMEOUT))
        return answer, False
    finally:
        _guarded("unlock", None, lambda: cache.delete(lock))


def healthy() -> tuple[bool, float]:
    """``(reachable, latency in ms)`` of the cache, by a write and read of a probe key."""
    started = time.perf_counter()
    probe = f"{PREFIX}:health"

    def roundtrip():
        cache = _cache()
        cache.set(probe, started, timeout=10)
        return cache.get(probe) == started

    ok = bool(_guarded("health check", False, roundtrip))
    return ok, (time.perf_counter() - started) * 1000
