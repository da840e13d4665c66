"""Result cache: versioned keys, a stampede guard, and no failure when the cache is down.

A cached answer's key holds everything that may change it: the model version, a
catalogue generation (bumped when a business changes), the user's generation (bumped
when the user or their interactions change) and the query parameters. Invalidation is
an increment of one small counter, never a wildcard delete; stale entries simply stop
being read and expire with ``CACHE_TIMEOUT``.

Every cache call is guarded: with Redis down or unreachable the answer is computed as
if it had missed, a warning is logged, and ``healthy()`` reports the cache degraded.
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
LOCK_SECONDS = 10
WAIT_SECONDS = 2.0


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
    """Everything cached for this user stops being read (their next answer is fresh)."""
    _bump(user_generation_key(user_id))


def invalidate_catalogue() -> None:
    """Every cached answer stops being read (a business changed: it may be in any list)."""
    _bump(CATALOGUE_GENERATION)


def result_key(kind: str, model_version: Any, user_id: Any, params: dict[str, Any]) -> str | None:
    """The versioned key of one answer, or None when the cache cannot be reached."""
    keys = [CATALOGUE_GENERATION] + ([user_generation_key(user_id)] if user_id is not None
                                     else [])
    generations = _guarded("read generations", None, lambda: _cache().get_many(keys))
    if generations is None:
        return None
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    user_gen = generations.get(user_generation_key(user_id), 0) if user_id is not None else "-"
    return (f"{PREFIX}:{kind}:m{model_version}:c{generations.get(CATALOGUE_GENERATION, 0)}"
            f":u{user_id}:g{user_gen}:{digest[:16]}")


def get_or_compute(key: str | None, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``(value, was_cached)``. One computation per key at a time across processes.

    A miss takes a short lock (``cache.add``); others wait up to ``WAIT_SECONDS`` for
    the value, then compute themselves rather than fail.
    """
    if key is None:
        return compute(), False
    cache = _cache()
    value = _guarded("read", None, lambda: cache.get(key))
    if value is not None:
        return value, True
    lock = key + ":lock"
    if not _guarded("lock", True, lambda: cache.add(lock, 1, timeout=LOCK_SECONDS)):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.02)
            value = _guarded("read", None, lambda: cache.get(key))
            if value is not None:
                return value, True
    try:
        value = compute()
        timeout = int(rec_settings.CACHE_TIMEOUT)
        _guarded("write", None, lambda: cache.set(key, value, timeout=timeout))
        return value, False
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
