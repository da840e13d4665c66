"""Result cache: versioned entries, a stampede guard, and no failure when the cache is down.

An answer is stored under a key made of the user and the query parameters, together
with a *stamp*: the active model version, a catalogue generation (bumped when a
business changes) and the user's generation (bumped when the user or their interactions
change). A read fetches the entry, the version and both generations in one round trip
(``get_many``) and serves the entry only if its stamp is current. Invalidation is an
increment of one small counter, never a wildcard delete; stale entries are overwritten
or expire with ``CACHE_TIMEOUT``.

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


def invalidate_catalogue() -> None:
    """Every cached answer stops being served (a business changed: it may be in any list)."""
    _bump(CATALOGUE_GENERATION)


def publish_model_version(version_id: int) -> None:
    write(MODEL_VERSION, version_id, MODEL_VERSION_SECONDS)


def cached_answer(
    kind: str,
    user_id: Any,
    params: dict[str, Any],
    compute: Callable[[Any], Any],
    active_version: Callable[[], Any],
) -> tuple[Any, bool]:
    """``(answer, was_cached)``; ``compute(model_version)`` runs on a miss.

    ``active_version()`` is asked only when the cache does not know the active model
    version. One computation per entry at a time across processes: a miss takes a short
    lock (``cache.add``); others wait up to ``WAIT_SECONDS`` for the answer, then
    compute themselves rather than fail.
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
        write(key, {"stamp": stamp, "answer": answer}, int(rec_settings.CACHE_TIMEOUT))
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
