"""Buffered event ingestion: the host's request hands events over and returns at once.

``defer_interactions`` appends the events to a Redis list (one round trip) and, when no
flush is scheduled yet, enqueues the ``xo_recommender.flush_interactions`` task; a
Celery worker then drains the list in batches through the same validated upsert as
``record_interactions`` (repeats still fold into counts). Events keep the time they
were deferred, not the time they are written.

Without a broker, or without a Redis cache to buffer in, or when Redis fails, the
events are written inline as ``record_interactions`` would. A push whose answer was lost
(a timeout) may still have reached the buffer: such events are written inline with
their hand-over's token (every buffered event carries one), and the flusher skips the
events of a hand-over whose token is written (kept ``KEEP_TOKENS_SECONDS``).

Scheduling is race-free: a flusher clears its "scheduled" mark before its last look at
the list, and a producer pushes before it tries to set the mark, so every event is seen
by a running flusher or schedules a new one.

Each batch is written exactly once. A flusher *claims* it: one script moves it from the
list into a list of its own under a random token, with a lease. The batch's upsert and a
row with that token (``IngestedBatch``) commit in one transaction; then the claim is
dropped. A write that fails ends the claim's lease, so the next flush adopts the batch
first, under the same token (a commit whose acknowledgement was lost is then seen as
written, not written again). A flusher that
dies holding a claim leaves it to the next flusher once the lease has run out: that one
adopts the batch under the same token, so if the dead one had committed, the token's
row is there and nothing is counted twice; if not, the batch is written now.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from xo_recommender import cache as rec_cache
from xo_recommender.broker import broker_configured
from xo_recommender.conf import settings as rec_settings
from xo_recommender.models import IngestedBatch
from xo_recommender.services.interactions import (
    InteractionEvent,
    check_values,
    record_interactions,
)

logger = logging.getLogger(__name__)

#: Events written per statement by the flusher: large, because each batch retires the
#: cached answers of its distinct users (a round trip each, twice) and a busy site repeats
#: users; 4,000 × 7 parameters stays under SQLite's 32,766.
FLUSH_BATCH = 4000
#: Seconds a "flush scheduled" mark lives without a flusher renewing it: after a worker
#: died mid-flush, the next deferred event schedules a new flush.
SCHEDULED_TTL = 60
#: How long a claimed batch stays its flusher's before another may adopt it: far longer
#: than writing one batch takes (about a second), so a live flusher is never overtaken.
CLAIM_LEASE_SECONDS = 300
#: How long the tokens of written batches are kept: past every lease, so an adopted
#: batch is always recognised as written.
KEEP_TOKENS_SECONDS = 86_400

#: Move up to ARGV[1] events from the head of the list into the claim list, and record
#: the claim's lease (ms, Redis's clock). KEYS: list, claims hash, claim list.
_CLAIM = """
local batch = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #batch == 0 then return batch end
redis.call('LTRIM', KEYS[1], #batch, -1)
for i = 1, #batch, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(batch, i, math.min(i + 999, #batch)))
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[2], t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3]))
return batch
"""
#: Take over claim ARGV[1] if its lease has run out (1), else leave it (0).
_ADOPT = """
local lease = redis.call('HGET', KEYS[1], ARGV[1])
if not lease then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if tonumber(lease) > now then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
return 1
"""


#: The buffer's key before it was the site's own (a site's events could be flushed into
#: another site's database when both shared one Redis database): still drained.
LEGACY_KEY = "xo:ingest"


def _redis() -> tuple[Any, str] | None:
    """The Redis client of the recommender's cache and this site's buffer key, if it is
    Redis (the key names the site's database, as the cache's keys do)."""
    cache = caches[rec_settings.CACHE_ALIAS]
    if "django_redis" not in type(cache).__module__:
        return None
    from django_redis import get_redis_connection

    return (get_redis_connection(rec_settings.CACHE_ALIAS),
            cache.make_key(f"{rec_cache.site_prefix()}:ingest"))


def _legacy_key() -> str:
    return caches[rec_settings.CACHE_ALIAS].make_key(LEGACY_KEY)


def defer_interaction(user: Any, business: Any, interaction_type: str, weight: float = 1.0,
                      *, count: int = 1, at: datetime | None = None) -> int:
    """``record_interaction`` for a busy request path: buffered, returns at once."""
    return defer_interactions([InteractionEvent(user, business, interaction_type, weight,
                                                count, at)])


def defer_interactions(events: Iterable[InteractionEvent]) -> int:
    """Hand events to the buffer (or write them inline, see the module); returns how
    many. Bad types, weights or counts raise ``ValidationError`` here; unknown user or
    business ids are logged and skipped by the flusher."""
    events = list(events)
    if not events:
        return 0
    events = check_values(events)  # ids as integers: the JSON below must carry them
    target = _redis() if broker_configured() else None
    if target is None:
        return record_interactions(events)
    redis, key = target
    now = timezone.now()
    handed = secrets.token_hex(16)  # this hand-over's token, carried by each of its events
    payload = [json.dumps([e.user_id, e.business_id, e.interaction_type, float(e.weight),
                           e.count, (e.at or now).isoformat(), handed]) for e in events]
    try:  # push, then claim the flush: in order, in one round trip
        pipe = redis.pipeline(transaction=False)
        pipe.rpush(key, *payload)
        pipe.set(f"{key}:scheduled", 1, nx=True, ex=SCHEDULED_TTL)
        _, claimed = pipe.execute()
    except Exception as exc:  # Redis down or hung: no buffer, so write now
        logger.warning("Interaction buffer unavailable (%s); writing inline", exc)
        return _write_inline(handed, events)
    try:
        if claimed:
            _schedule(key)
    except Exception as exc:
        logger.warning("Could not schedule an interaction flush (%s); flushing inline", exc)
        flush_deferred(key)
    return len(events)


def _write_inline(handed: str, events: list[InteractionEvent]) -> int:
    """Write events whose push failed, with their hand-over's token in the same
    transaction: a push that reached Redis though its answer did not (a timeout) leaves
    them in the buffer too, and the flusher then skips them by that token."""
    using = router.db_for_write(IngestedBatch)
    with transaction.atomic(using=using):
        IngestedBatch.objects.using(using).create(token=handed)
        return record_interactions(events)


def _schedule(key: str, countdown: float | None = None) -> None:
    from xo_recommender.tasks import flush_interactions

    try:
        if countdown is None:
            flush_interactions.apply_async((key,))
        else:
            flush_interactions.apply_async((key,), countdown=countdown)
    except Exception:
        _redis_or_none_delete(f"{key}:scheduled")
        raise


def _redis_or_none_delete(name: str) -> None:
    target = _redis()
    if target is not None:
        target[0].delete(name)


def queue_key() -> str | None:
    """This site's buffer key (``None`` when there is no Redis cache to buffer in)."""
    target = _redis()
    return None if target is None else target[1]


def flush_deferred(key: str | None = None) -> int:
    """Write every buffered event, ``FLUSH_BATCH`` at a time, and every batch a dead
    flusher left claimed; returns how many events were written."""
    target = _redis()
    if target is None:
        return 0
    redis, own_key = target
    key = key or own_key
    mark = f"{key}:scheduled"
    written = 0
    if key == own_key:  # what an older version left in the shared key: written here
        legacy = _legacy_key()
        if redis.llen(legacy) or redis.hlen(_claims_key(legacy)):
            written += flush_deferred(legacy)
    written += _adopt_orphans(redis, key)
    lease_ms = int(CLAIM_LEASE_SECONDS * 1000)
    while True:
        token = secrets.token_hex(16)
        raw = redis.eval(_CLAIM, 3, key, _claims_key(key), _claim_key(key, token),
                         FLUSH_BATCH, token, lease_ms)
        if not raw:
            redis.delete(mark)
            if redis.llen(key) and redis.set(mark, 1, nx=True, ex=SCHEDULED_TTL):
                continue  # pushed after our last look, before the mark went: ours
            _prune_tokens()
            _adopt_later(redis, key)
            return written
        redis.expire(mark, SCHEDULED_TTL)
        try:
            written += _write_once(token, raw)
        except Exception:
            _end_lease(redis, key, token)  # the retry adopts it first, under this token
            raise
        _release(redis, key, token)


def _adopt_later(redis, key: str) -> None:
    """With batches still claimed by another flusher, schedule one flush for when the
    first lease runs out: if that flusher died, its batch is written then, even when no
    event comes after it to start a flush (at most one such flush per lease)."""
    leases = [int(v) for v in redis.hvals(_claims_key(key))]
    if not leases or not broker_configured():
        return
    seconds, micros = redis.time()  # the clock the leases were set by
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    wait = max(min(leases) - now_ms, 0) / 1000 + 1.0
    if not redis.set(f"{key}:adopt", 1, nx=True, ex=max(int(wait), 1)):
        return  # one is scheduled already
    try:
        _schedule(key, countdown=wait)
    except Exception as exc:
        redis.delete(f"{key}:adopt")
        logger.warning("Could not schedule the flush that adopts a stopped flusher's "
                       "batch (%s); the next event will", exc)


def _claims_key(key: str) -> str:
    return f"{key}:claims"


def _claim_key(key: str, token: str) -> str:
    return f"{key}:claim:{token}"


def _release(redis, key: str, token: str, requeue: list[bytes] | None = None) -> None:
    """Drop a claim (in one transaction, putting its events back first if ``requeue``)."""
    with redis.pipeline() as pipe:
        if requeue:
            pipe.lpush(key, *reversed(requeue))
        pipe.delete(_claim_key(key, token))
        pipe.hdel(_claims_key(key), token)
        pipe.execute()


def _end_lease(redis, key: str, token: str) -> None:
    """Give a claim whose write failed to the next flush (which adopts such claims before
    anything else, in order) under the same token. Put back in the list, it would be
    claimed under a new token: a commit that reached the database but whose
    acknowledgement was lost would then be counted twice."""
    redis.hset(_claims_key(key), token, 0)


def _adopt_orphans(redis, key: str) -> int:
    """Write the batches whose flusher's lease ran out (it died holding them), once."""
    written = 0
    lease_ms = int(CLAIM_LEASE_SECONDS * 1000)
    for raw_token in redis.hkeys(_claims_key(key)):
        token = raw_token.decode() if isinstance(raw_token, bytes) else str(raw_token)
        if not redis.eval(_ADOPT, 1, _claims_key(key), token, lease_ms):
            continue  # its flusher is still at work
        raw = redis.lrange(_claim_key(key, token), 0, -1)
        if raw:
            logger.warning("Adopting a batch of %d deferred interactions left claimed by a "
                           "flusher that stopped", len(raw))
            try:
                written += _write_once(token, raw)
            except Exception:
                _end_lease(redis, key, token)  # failed again: still first for the next
                raise
        _release(redis, key, token)
    return written


def _write_once(token: str, raw: list[bytes]) -> int:
    """Write a claimed batch and its token in one transaction (0 if it already was)."""
    using = router.db_for_write(IngestedBatch)
    with transaction.atomic(using=using):
        try:
            with transaction.atomic(using=using):
                IngestedBatch.objects.using(using).create(token=token)
        except IntegrityError:
            return 0  # its first flusher committed it before it stopped
        decoded = [_decode(r) for r in raw]
        handed = {h for _, h in decoded if h is not None}
        inline = set(IngestedBatch.objects.using(using).filter(token__in=handed)
                     .values_list("token", flat=True)) if handed else set()
        return _write([e for e, h in decoded if h is None or h not in inline])


def _prune_tokens() -> None:
    cutoff = timezone.now() - timedelta(seconds=KEEP_TOKENS_SECONDS)
    IngestedBatch.objects.filter(written_at__lt=cutoff).delete()


def _decode(raw: bytes) -> tuple[InteractionEvent, str | None]:
    """An event and its hand-over's token (None: buffered by a version without them)."""
    user_id, business_id, itype, weight, count, at, *handed = json.loads(raw)
    return (InteractionEvent(user_id, business_id, itype, weight, count, parse_datetime(at)),
            handed[0] if handed else None)


def _write(events: list[InteractionEvent]) -> int:
    """Write a batch; an event that cannot be stored (an id gone since, or a value the
    database refuses) is logged and dropped, so it never holds up the events behind it.
    A fault of the database itself (``OperationalError``) is raised: the batch is kept.
    An event's time was checked when it was handed over, by the web process's clock:
    one ahead of this worker's is taken as now, not refused as a time in the future."""
    now = timezone.now()
    events = [replace(e, at=now) if e.at is not None and e.at > now else e for e in events]
    try:
        with transaction.atomic(using=router.db_for_write(IngestedBatch)):
            return record_interactions(events)
    except (ValidationError, DataError, IntegrityError):
        pass  # some event is bad: write the others one by one
    written = 0
    for e in events:
        try:
            with transaction.atomic(using=router.db_for_write(IngestedBatch)):
                written += record_interactions([e])
        except (ValidationError, DataError, IntegrityError) as exc:
            logger.warning("Dropping a deferred interaction %s: %s", e,
                           getattr(exc, "messages", exc))
    return written
