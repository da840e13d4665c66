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
it had missed, a warning is logged, and ``healthy()`` reports the cache degraded. A
failed call opens a per-process *circuit breaker*: for ``CACHE_BREAKER_SECONDS`` the
cache is not asked at all, so a hung Redis costs one socket timeout per process, not
one per request. Invalidations that could not be written meanwhile are kept in the
process and written when the cache answers again (on the next cache call, or by a
retry timer), so a change made during an outage is not lost when Redis comes back.

A request counter (the API's rate throttle) can ride on the answer's read: inside
:func:`counting`, the next :func:`cached_answer` sends the counter's increment in the same
round trip as its ``get_many`` (one script, on django-redis) and lets the counter refuse
the request before anything is computed. A cache hit then costs one round trip in all.

Counters never restart from a value they had before: a missing counter (evicted, or
Redis restarted empty) is created at the current time in microseconds, beyond any
value an old entry can carry. A stampede lock holds a random token and is deleted only
by its owner.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections

from xo_recommender.conf import settings as rec_settings

logger = logging.getLogger("xo_recommender.cache")

PREFIX = "xo_rec"
#: How long the active model version published in the cache lives: a few seconds, so
#: that processes with a private cache (local memory) re-read it from the database soon.
MODEL_VERSION_SECONDS = 5
LOCK_SECONDS = 10
WAIT_SECONDS = 2.0
#: Most catalogue changes an entry may be checked against before it is retired instead.
MAX_CHANGES = 50
ALL_BUSINESSES = "*"


def _cache():
    return caches[rec_settings.CACHE_ALIAS]


_SITE_PREFIXES: dict[Any, str] = {}


def site_prefix() -> str:
    """``xo_rec:<site>``, the start of every key of this app. ``<site>`` is a digest of
    the name of the site's database, so two sites (or a staging copy) that share one
    cache — the same Redis database, the same ``KEY_PREFIX`` — never read each other's
    answers, counters or model version: user 7 of one site is not user 7 of the other."""
    name = connections[DEFAULT_DB_ALIAS].settings_dict.get("NAME")
    prefix = _SITE_PREFIXES.get(name)
    if prefix is None:
        digest = hashlib.sha1(str(name).encode()).hexdigest()[:10]
        prefix = _SITE_PREFIXES.setdefault(name, f"{PREFIX}:{digest}")
    return prefix


def catalogue_generation_key(site: str | None = None) -> str:
    """``site``: ``site_prefix()``, when the caller has it already (several keys at once)."""
    return f"{site or site_prefix()}:gen:catalogue"


def newcomers_generation_key(site: str | None = None) -> str:
    """Bumped when a business is created: each process's list of the businesses the
    model does not know (``services.newcomers``) is read again at its next miss."""
    return f"{site or site_prefix()}:gen:newcomers"


def model_version_key(site: str | None = None) -> str:
    """The active model version, published on every switch."""
    return f"{site or site_prefix()}:model:active"


def user_generation_key(user_id: Any, site: str | None = None) -> str:
    return f"{site or site_prefix()}:gen:user:{user_id}"


class _Breaker:
    """This process's view of the cache: open (skip it) until ``until``, and the
    invalidations that could not be written while it was unreachable."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.until = 0.0
        self.users: set = set()
        self.businesses: set = set()
        self.everything = False
        self.timer: threading.Timer | None = None

    def is_open(self) -> bool:
        return time.monotonic() < self.until

    def trip(self) -> None:
        self.until = time.monotonic() + float(rec_settings.CACHE_BREAKER_SECONDS)

    def has_pending(self) -> bool:
        return bool(self.users or self.businesses or self.everything)


_breaker = _Breaker()
#: Above this many pending invalidations, recovery retires every entry instead.
MAX_PENDING = 10_000


def breaker_open() -> bool:
    """Whether this process is skipping the cache after a recent failure."""
    return _breaker.is_open()


def note_failure(operation: str, exc: Exception) -> None:
    """Another user of the same cache (the throttle) saw it fail: skip it for a while."""
    _breaker.trip()
    logger.warning("Recommendation cache unavailable during %s (skipped for %ss): %s",
                   operation, rec_settings.CACHE_BREAKER_SECONDS, exc)


def reset_breaker() -> None:
    """Close the breaker and forget pending invalidations and their timer (tests)."""
    with _breaker.lock:
        if _breaker.timer is not None:
            _breaker.timer.cancel()
            _breaker.timer = None
        _breaker.until = 0.0
        _breaker.users.clear()
        _breaker.businesses.clear()
        _breaker.everything = False


def _guarded(operation: str, default: Any, call: Callable[[], Any]) -> Any:
    if _breaker.is_open():
        return default
    if _breaker.has_pending():
        _replay_pending()
        if _breaker.is_open():
            return default
    try:
        return call()
    except Exception as exc:  # any backend error: serve without the cache for a while
        _breaker.trip()
        logger.warning("Recommendation cache unavailable during %s (skipped for %ss): %s",
                       operation, rec_settings.CACHE_BREAKER_SECONDS, exc)
        return default


def _remember(user_id: Any = None, business_id: Any = None) -> None:
    """Keep an invalidation that could not be written, to write it at recovery."""
    with _breaker.lock:
        if user_id is not None:
            _breaker.users.add(user_id)
        if business_id is not None:
            _breaker.businesses.add(business_id)
        if len(_breaker.users) + len(_breaker.businesses) > MAX_PENDING:
            _breaker.users.clear()
            _breaker.businesses.clear()
            _breaker.everything = True
        if _breaker.timer is None:
            _breaker.timer = threading.Timer(
                max(float(rec_settings.CACHE_BREAKER_SECONDS), 0.1), _retry_pending)
            _breaker.timer.daemon = True
            _breaker.timer.start()


def _retry_pending() -> None:
    """Timer: write the pending invalidations once the breaker has closed, or re-arm."""
    with _breaker.lock:
        _breaker.timer = None
    if not _breaker.has_pending():
        return
    if not _breaker.is_open():
        _replay_pending()
    if _breaker.has_pending():
        _remember()  # re-arms the timer


def _replay_pending() -> None:
    with _breaker.lock:
        users, businesses = set(_breaker.users), set(_breaker.businesses)
        everything = _breaker.everything
        _breaker.users.clear()
        _breaker.businesses.clear()
        _breaker.everything = False
    try:
        cache = _cache()
        if everything:
            _raw_record_change(cache, ALL_BUSINESSES)
        else:
            for user_id in users:
                _raw_bump(cache, user_generation_key(user_id))
            for business_id in businesses:
                _raw_record_change(cache, business_id)
    except Exception as exc:
        _breaker.trip()
        with _breaker.lock:
            _breaker.users |= users
            _breaker.businesses |= businesses
            _breaker.everything |= everything
        logger.warning("Recommendation cache still unavailable; %s invalidation(s) kept "
                       "for later: %s", len(users) + len(businesses) + everything, exc)
    else:
        logger.info("Recommendation cache back: %s missed invalidation(s) written",
                    "all" if everything else len(users) + len(businesses))


def _counter_base() -> int:
    """A fresh counter's first value: now in microseconds, past any value it had before."""
    return time.time_ns() // 1000


def _twice_an_entry() -> int:
    """Seconds a change record or a user's counter lives: twice an entry's life."""
    return max(int(rec_settings.CACHE_TIMEOUT), 60) * 2


def _counter_timeout(key: str) -> int | None:
    """How long a counter lives: the catalogue's for ever (one key), a user's twice an
    entry's life. A user's expired counter is seeded again past any value it had
    (``_counter_base``), so it costs at most a miss, and a site keeps no key for every
    user who ever interacted."""
    return None if key == catalogue_generation_key() else _twice_an_entry()


def _raw_bump(cache: Any, key: str) -> int:
    try:
        return cache.incr(key)
    except ValueError:  # missing: start a new counter (add is atomic)
        base = _counter_base()
        if cache.add(key, base, timeout=_counter_timeout(key)):
            return base
        return cache.incr(key)


def _raw_record_change(cache: Any, what: Any) -> None:
    generation = _raw_bump(cache, catalogue_generation_key())
    cache.set(_change_key(generation), what, timeout=_twice_an_entry())


def read(key: str) -> Any:
    """``cache.get`` that answers None when the cache is down."""
    return _guarded("read", None, lambda: _cache().get(key))


def write(key: str, value: Any, timeout: int | None) -> None:
    """``cache.set`` that does nothing when the cache is down."""
    _guarded("write", None, lambda: _cache().set(key, value, timeout=timeout))


def invalidate_user(user_id: Any) -> None:
    """Everything cached for this user stops being served (their next answer is fresh)."""
    done = _guarded("invalidate", False,
                    lambda: _raw_bump(_cache(), user_generation_key(user_id)) is not None)
    if not done:
        _remember(user_id=user_id)


#: ``_raw_bump`` as one server-side step: INCR, or start a missing counter at ARGV[1]
#: that lives ARGV[2] seconds.
_BUMP_SCRIPT = ("if redis.call('exists', KEYS[1]) == 1 then return redis.call('incr', KEYS[1]) "
                "end redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
                "return tonumber(ARGV[1])")


def invalidate_users(user_ids: Iterable[Any]) -> None:
    """``invalidate_user`` for many users; on django-redis in one round trip (a batch of
    deferred interactions touches hundreds of users: one round trip each was its cost)."""
    ids = list(dict.fromkeys(user_ids))
    cache = _cache()
    if len(ids) < 2 or not _uses_redis(cache):
        for user_id in ids:
            invalidate_user(user_id)
        return

    def bump_all() -> bool:
        from django_redis import get_redis_connection

        pipe = get_redis_connection(rec_settings.CACHE_ALIAS).pipeline(transaction=False)
        base = _counter_base()
        ttl = _twice_an_entry()
        for user_id in ids:
            pipe.eval(_BUMP_SCRIPT, 1, cache.make_key(user_generation_key(user_id)), base, ttl)
        pipe.execute()
        return True

    if not _guarded("invalidate", False, bump_all):
        for user_id in ids:
            _remember(user_id=user_id)


def _change_key(generation: int) -> str:
    return f"{site_prefix()}:catalogue:change:{generation}"


def invalidate_business(business_id: Any) -> None:
    """Answers that list this business stop being served (the others stay)."""
    business_id = int(business_id)
    if not _guarded("invalidate", False,
                    lambda: _raw_record_change(_cache(), business_id) or True):
        _remember(business_id=business_id)


def invalidate_businesses(business_ids: Iterable[Any]) -> None:
    """``invalidate_business`` for several; more than ``MAX_CHANGES`` of them retire
    every entry anyway, so that is one write instead of one per business."""
    ids = list(dict.fromkeys(int(i) for i in business_ids))
    if len(ids) > MAX_CHANGES:
        invalidate_catalogue()
        return
    for business_id in ids:
        invalidate_business(business_id)


def note_new_business() -> None:
    """A business was created: every process reads its newcomers again at its next miss
    (cache down: within ``newcomers.REFRESH_SECONDS``, as before)."""
    _guarded("note a new business", None,
             lambda: _raw_bump(_cache(), newcomers_generation_key()))


def newcomers_generation() -> Any:
    """The newcomers' counter (None: never bumped, expired, or the cache is down)."""
    return read(newcomers_generation_key())


def invalidate_catalogue() -> None:
    """Every cached answer stops being served."""
    if not _guarded("invalidate", False,
                    lambda: _raw_record_change(_cache(), ALL_BUSINESSES) or True):
        with _breaker.lock:
            _breaker.everything = True
        _remember()


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


def _uses_redis(cache: Any) -> bool:
    return "django_redis" in type(cache).__module__


def _raw_count(cache: Any, key: str, seconds: int) -> int:
    """One more in the fixed window under ``key`` (opened by the first, ``seconds`` long)."""
    if _uses_redis(cache):  # SET NX EX then INCR: one round trip, no script
        pipe = cache.client.get_client(write=True).pipeline(transaction=False)
        raw = cache.make_key(key)
        pipe.set(raw, 0, ex=seconds, nx=True)
        pipe.incr(raw)
        return pipe.execute()[1]
    try:
        return cache.incr(key)
    except ValueError:  # no window open: open one (add is atomic)
        return 1 if cache.add(key, 1, seconds) else cache.incr(key)


def count_window(key: str, seconds: int, cache: Any = None) -> int | None:
    """Count one request in a fixed window of ``seconds`` under ``key`` (in ``cache``,
    default the recommender's); None when the cache is down (let the request through)."""
    return _guarded("count", None, lambda: _raw_count(cache or _cache(), key, seconds))


class _Counting:
    """A request to count with the next answer read (see :func:`counting`)."""

    def __init__(self, key: str, seconds: int, admit: Callable[[int | None], None]) -> None:
        self.key, self.seconds, self.admit = key, seconds, admit
        self.done = False


_counting: ContextVar[_Counting | None] = ContextVar("xo_recommender_counting", default=None)


@contextmanager
def counting(key: str, seconds: int, admit: Callable[[int | None], None]) -> Iterator[None]:
    """Count this request under ``key`` (as :func:`count_window`) in the round trip of the
    block's first :func:`cached_answer` read; ``admit(count)`` (count None when the cache
    is down) runs right after that read, before any computation, and may raise to refuse
    the request. A block that reads no answer is counted, and admitted, at its end."""
    counter = _Counting(key, seconds, admit)
    token = _counting.set(counter)
    try:
        yield
    except Exception:
        _counting.reset(token)
        if not counter.done:  # refused by the count rather than by the error, as before
            counter.done = True
            admit(count_window(key, seconds))
        raise
    _counting.reset(token)
    if not counter.done:
        counter.done = True
        admit(count_window(key, seconds))


#: Count in the window KEYS[1] (opened ARGV[1] seconds long), then MGET the other keys:
#: one command, cheaper for the client than a pipeline of three.
_COUNT_AND_READ = ("redis.call('set', KEYS[1], 0, 'ex', ARGV[1], 'nx') "
                   "return {redis.call('incr', KEYS[1]), redis.call('mget', unpack(KEYS, 2))}")
_COUNT_AND_READ_SHA = hashlib.sha1(_COUNT_AND_READ.encode()).hexdigest()


def _read_counting(cache: Any, keys: list[str], counter: _Counting) -> tuple[dict, int]:
    """``(cache.get_many(keys), count)`` in one round trip on django-redis."""
    if not _uses_redis(cache):
        return cache.get_many(keys), _raw_count(cache, counter.key, counter.seconds)
    from redis.exceptions import NoScriptError

    client = cache.client
    raw = [cache.make_key(counter.key), *(cache.make_key(k) for k in keys)]
    redis = client.get_client(write=True)
    try:
        count, values = redis.evalsha(_COUNT_AND_READ_SHA, len(raw), *raw, counter.seconds)
    except NoScriptError:  # first use on this server (or after SCRIPT FLUSH): send it
        count, values = redis.eval(_COUNT_AND_READ, len(raw), *raw, counter.seconds)
    return ({k: client.decode(v) for k, v in zip(keys, values, strict=True) if v is not None},
            count)


def _read_stamped(cache: Any, keys: list[str]) -> dict | None:
    """The entry and its stamps (None: cache down), counting the request if asked."""
    counter = _counting.get()
    if counter is None or counter.done:
        return _guarded("read", None, lambda: cache.get_many(keys))
    counter.done = True
    found, count = _guarded("read", (None, None), lambda: _read_counting(cache, keys, counter))
    counter.admit(count)  # outside the guard: a refusal is not a cache fault
    return found


def publish_model_version(version_id: int) -> None:
    write(model_version_key(), version_id, MODEL_VERSION_SECONDS)


def params_digest(params: dict[str, Any]) -> str:
    """What names an answer's parameters in its key (``digest`` of :func:`cached_answer`)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def cached_answer(
    kind: str,
    user_id: Any,
    params: dict[str, Any],
    compute: Callable[[Any], Any],
    active_version: Callable[[], Any],
    items: Callable[[Any], list[int]] | None = None,
    *,
    digest: str | None = None,
) -> tuple[Any, bool]:
    """``(answer, was_cached)``; ``compute(model_version)`` runs on a miss.

    ``active_version()`` is asked only when the cache does not know the active model
    version; ``items(answer)`` lists the business ids an answer shows, so that a change
    to another business leaves it cached (without it, any business change retires it);
    ``digest``: ``params_digest(params)``, when the caller remembers it.
    One computation per entry at a time across processes: a miss takes a short lock
    (``cache.add``); others wait up to ``WAIT_SECONDS`` for the answer, then compute
    themselves rather than fail.
    """
    site = site_prefix()
    key = f"{site}:{kind}:u{user_id}:{(digest or params_digest(params))[:20]}"
    user_gen, catalogue_gen, model_version = (user_generation_key(user_id, site),
                                              catalogue_generation_key(site),
                                              model_version_key(site))
    cache = _cache()
    found = _read_stamped(cache, [key, model_version, catalogue_gen, user_gen])
    if found is None:  # cache down
        return compute(active_version()), False
    version = found.get(model_version)
    if version is None:
        version = active_version()
        if version is not None:
            publish_model_version(version)
    missing = [k for k in (catalogue_gen, user_gen) if k not in found]
    if missing:  # never stamped yet, or evicted: start it past any value it ever had
        found.update(_guarded("seed counters", {}, lambda: _seed(cache, missing)))
        if any(k not in found for k in missing):
            return compute(active_version()), False
    stamp = [version, found[catalogue_gen], found[user_gen]]
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
    token = uuid.uuid4().hex
    owned = _guarded("lock", None, lambda: cache.add(lock, token, timeout=LOCK_SECONDS))
    if owned is False:  # another process computes it: wait a little for its answer
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and not _breaker.is_open():
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
        if owned:
            _guarded("unlock", None, lambda: _release(cache, lock, token))


def _seed(cache: Any, keys: list[str]) -> dict[str, int]:
    """Create missing counters at a fresh base (``add``: a concurrent seed wins) and
    return their current values."""
    base = _counter_base()
    for key in keys:
        cache.add(key, base, timeout=_counter_timeout(key))
    return cache.get_many(keys)


def _release(cache: Any, lock: str, token: str) -> None:
    """Delete the lock only if it is still ours (it may have expired and been retaken)."""
    if cache.get(lock) == token:
        cache.delete(lock)


def healthy() -> tuple[bool, float]:
    """``(reachable, latency in ms)`` of the cache: one read (a probe writes nothing).

    While the breaker is open the cache is reported unreachable without being asked.
    """
    started = time.perf_counter()
    sentinel = object()
    found = _guarded("health check", sentinel, lambda: _cache().get(f"{site_prefix()}:health"))
    return found is not sentinel, (time.perf_counter() - started) * 1000
