"""Buffered ingestion: deferred events reach the table through Redis and a flush task,
with the same upsert, and nothing is lost on the way (or when the buffer is missing)."""

import time

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.db.models import Sum

from tests.celery_worker import BROKER, celery_worker
from tests.factories import BusinessFactory, UserFactory
from xo_recommender.models import Interaction
from xo_recommender.services import ingestion
from xo_recommender.services.interactions import InteractionEvent


def stored() -> int:
    return Interaction.objects.aggregate(n=Sum("count"))["n"] or 0


@pytest.fixture
def redis_buffer():
    """The cache must be Redis (``make test``); the SQLite run has no buffer to test."""
    if "django_redis" not in type(caches["default"]).__module__:
        pytest.skip("needs the Redis cache (make test)")
    redis, key = ingestion._redis()
    yield redis, key
    redis.delete(key, f"{key}:scheduled", f"{key}:claims", f"{key}:adopt",
                 *redis.keys(f"{key}:claim:*"))


@pytest.fixture
def broker(monkeypatch):
    """A broker is configured; tasks sent are recorded instead of delivered."""
    from celery import current_app

    from xo_recommender.tasks import flush_interactions

    conf = current_app.conf
    saved = (conf.broker_url, conf.task_always_eager)
    conf.broker_url, conf.task_always_eager = BROKER, False
    sent = []
    monkeypatch.setattr(flush_interactions, "apply_async", lambda args=(), **kw: sent.append(args))
    yield sent
    conf.broker_url, conf.task_always_eager = saved


@pytest.mark.django_db
def test_without_a_broker_deferred_events_are_written_at_once(user, business):
    assert ingestion.defer_interaction(user, business, "view", count=2) == 1
    assert Interaction.objects.get(user=user, business=business).count == 2


@pytest.mark.django_db
def test_deferred_events_wait_in_redis_until_one_scheduled_flush_writes_them_all(
        redis_buffer, broker):
    redis, key = redis_buffer
    users = [UserFactory() for _ in range(7)]
    places = [BusinessFactory() for _ in range(5)]
    sent = 0
    for i in range(1234):  # more than two batches, with repeats of the same keys
        ingestion.defer_interaction(users[i % 7], places[i % 5], ("view", "like")[i % 2])
        sent += 1
    assert stored() == 0 and redis.llen(key) == sent
    assert broker == [(key,)]  # one flush scheduled for the whole burst
    assert ingestion.flush_deferred() == sent
    assert stored() == sent  # every event counted: 0 lost
    assert Interaction.objects.count() == 70  # folded per (user, place, type): lcm(7, 5, 2)
    assert redis.llen(key) == 0 and not redis.exists(f"{key}:scheduled")
    ingestion.defer_interaction(users[0], places[0], "save")
    assert broker == [(key,), (key,)]  # the next event schedules again


@pytest.mark.django_db
def test_bad_events_fail_at_once_and_unknown_ids_are_skipped_at_flush(
        redis_buffer, broker, user, business):
    with pytest.raises(ValidationError) as err:
        ingestion.defer_interaction(user, business, "teleport")
    assert "interaction_type" in err.value.message_dict
    with pytest.raises(ValidationError):
        ingestion.defer_interaction(user, business, "view", weight=float("nan"))
    ingestion.defer_interactions([InteractionEvent(user.pk, business.pk, "view"),
                                  InteractionEvent(987654321, business.pk, "view"),
                                  InteractionEvent(user.pk, business.pk, "like")])
    assert ingestion.flush_deferred() == 2
    assert set(Interaction.objects.values_list("interaction_type", flat=True)) == {"view",
                                                                                   "like"}


@pytest.mark.django_db
def test_a_push_whose_answer_timed_out_is_written_once(redis_buffer, broker, user, business,
                                                       monkeypatch):
    """Redis ran the push but its answer was lost: the events are written inline, and
    the flusher skips them when it finds them in the buffer after all."""
    from redis.client import Pipeline
    from redis.exceptions import TimeoutError as RedisTimeout

    redis, key = redis_buffer
    real = Pipeline.execute

    def answer_lost(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise RedisTimeout("Timeout reading from socket")

    monkeypatch.setattr(Pipeline, "execute", answer_lost)
    ingestion.defer_interactions([InteractionEvent(user.pk, business.pk, "view", count=2),
                                  InteractionEvent(user.pk, business.pk, "like")])
    monkeypatch.undo()
    assert stored() == 3 and redis.llen(key) == 2  # written, and in the buffer too
    ingestion.defer_interaction(user, business, "save")  # a later hand-over, buffered
    assert ingestion.flush_deferred() == 1
    assert stored() == 4  # each event once


@pytest.mark.django_db
@pytest.mark.parametrize("failures", [1, 2])  # the task's tries, the database still down
def test_a_failed_write_is_retried_first_and_in_order(redis_buffer, broker, user, business,
                                                      monkeypatch, failures):
    redis, key = redis_buffer
    for t in ("view", "like", "save"):
        ingestion.defer_interaction(user, business, t)
    real = ingestion.record_interactions

    def down(events):
        raise OperationalError("database restarting")

    monkeypatch.setattr(ingestion, "record_interactions", down)
    for _ in range(failures):
        with pytest.raises(OperationalError):
            ingestion.flush_deferred()
    ingestion.defer_interaction(user, business, "share")  # after it, in the list
    written = []
    monkeypatch.setattr(ingestion, "record_interactions",
                        lambda events: written.extend(e.interaction_type for e in events)
                        or real(events))
    assert ingestion.flush_deferred() == 4 and stored() == 4
    assert written == ["view", "like", "save", "share"]
    assert not redis.exists(f"{key}:claims") and not redis.keys(f"{key}:claim:*")


@pytest.mark.django_db
def test_an_event_stamped_by_a_web_clock_ahead_of_the_workers_is_written(
        redis_buffer, broker, user, business, monkeypatch):
    """Checked at hand-over by the web process's clock, an event is not refused later
    for a time the worker's clock thinks is in the future."""
    from datetime import timedelta

    from django.utils import timezone

    ahead = timezone.now() + timedelta(minutes=4)  # accepted: within the skew allowed
    ingestion.defer_interaction(user, business, "view", at=ahead)
    worker_now = ahead - timedelta(minutes=6)  # the worker's clock is behind the web's
    monkeypatch.setattr(timezone, "now", lambda: worker_now)
    assert ingestion.flush_deferred() == 1 and stored() == 1


@pytest.mark.django_db
def test_events_buffered_by_an_older_version_without_tokens_are_written(
        redis_buffer, broker, user, business):
    import json

    redis, key = redis_buffer
    redis.rpush(key, json.dumps([user.pk, business.pk, "view", 1.0, 3,
                                 "2026-01-01T00:00:00+00:00"]))
    assert ingestion.flush_deferred() == 1 and stored() == 3


@pytest.mark.django_db
def test_a_commit_whose_acknowledgement_was_lost_is_not_written_again(
        redis_buffer, broker, user, business, monkeypatch):
    """The batch and its token committed, then the connection dropped before the
    flusher heard so: the retry finds the token and writes nothing twice."""
    for t in ("view", "like", "save"):
        ingestion.defer_interaction(user, business, t)
    real = ingestion._write_once

    def committed_then_lost(token, raw):
        real(token, raw)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ingestion, "_write_once", committed_then_lost)
    with pytest.raises(OperationalError):
        ingestion.flush_deferred()
    monkeypatch.setattr(ingestion, "_write_once", real)
    assert ingestion.flush_deferred() == 0
    assert stored() == 3  # once


@pytest.mark.django_db
def test_redis_down_or_no_schedule_means_written_inline(redis_buffer, broker, user, business,
                                                        monkeypatch):
    redis, key = redis_buffer

    def refuse(*args, **kwargs):
        raise ConnectionError("redis is gone")

    from redis.client import Pipeline

    monkeypatch.setattr(Pipeline, "execute", refuse)
    ingestion.defer_interaction(user, business, "view")
    assert stored() == 1
    monkeypatch.undo()
    # the broker refuses the task: the buffer is flushed here and the mark released
    from xo_recommender.tasks import flush_interactions

    monkeypatch.setattr(flush_interactions, "apply_async", refuse)
    ingestion.defer_interaction(user, business, "like")
    assert stored() == 2 and redis.llen(key) == 0
    assert not redis.exists(f"{key}:scheduled")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_drains_the_buffer_and_loses_nothing(redis_buffer, settings):
    """Producer here, Celery worker in another process, same Redis and database."""
    redis, key = redis_buffer
    with celery_worker(keep_cache=True) as proc:
        users = [UserFactory() for _ in range(20)]
        places = [BusinessFactory() for _ in range(10)]
        sent = 0
        for i in range(3000):
            ingestion.defer_interaction(users[i % 20], places[(i * 7) % 10], "view")
            sent += 1
        deadline = time.monotonic() + 60
        while stored() < sent and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        assert stored() == sent
        assert redis.llen(key) == 0


@pytest.mark.django_db
def test_many_users_are_invalidated_in_one_go_with_the_counters_semantics(redis_buffer):
    """The batch path bumps existing counters by one and starts missing ones from the
    clock, as ``invalidate_user`` does; with the cache failing they are kept for later."""
    from xo_recommender import cache

    store = caches["default"]
    store.set(cache.user_generation_key("a"), 41, timeout=None)
    before = cache._counter_base()
    cache.invalidate_users(["a", "b", "a"])
    assert store.get(cache.user_generation_key("a")) == 42
    assert store.get(cache.user_generation_key("b")) >= before
    cache.invalidate_users(["a", "b"])
    assert store.get(cache.user_generation_key("a")) == 43
    cache.note_failure("test", RuntimeError("down"))
    try:
        cache.invalidate_users(["c", "d"])
        assert {"c", "d"} <= cache._breaker.users
    finally:
        cache.reset_breaker()


def _claim_batch(redis, key, token="a" * 32):
    """What a flusher does before its write: the batch moves under its claim."""
    return redis.eval(ingestion._CLAIM, 3, key, f"{key}:claims", f"{key}:claim:{token}",
                      ingestion.FLUSH_BATCH, token, 60_000)


def _lease_runs_out(redis, key, token="a" * 32):
    redis.hset(f"{key}:claims", token, 0)


@pytest.mark.django_db
def test_a_batch_left_claimed_by_a_flusher_that_died_is_written_by_the_next(
        redis_buffer, broker, user, business):
    redis, key = redis_buffer
    for t in ("view", "like", "save"):
        ingestion.defer_interaction(user, business, t)
    assert len(_claim_batch(redis, key)) == 3 and redis.llen(key) == 0  # then it died
    assert ingestion.flush_deferred() == 0 and stored() == 0  # its lease still runs
    _lease_runs_out(redis, key)
    assert ingestion.flush_deferred() == 3 and stored() == 3
    assert not redis.exists(f"{key}:claims") and not redis.keys(f"{key}:claim:*")


@pytest.mark.django_db
def test_a_batch_whose_flusher_died_after_writing_it_is_not_counted_twice(
        redis_buffer, broker, user, business):
    redis, key = redis_buffer
    for t in ("view", "like", "save"):
        ingestion.defer_interaction(user, business, t)
    token = "b" * 32
    raw = _claim_batch(redis, key, token)
    assert ingestion._write_once(token, raw) == 3  # committed, then died before releasing
    assert stored() == 3
    _lease_runs_out(redis, key, token)
    assert ingestion.flush_deferred() == 0
    assert stored() == 3  # once
    assert not redis.exists(f"{key}:claims") and not redis.keys(f"{key}:claim:*")
    ingestion.defer_interaction(user, business, "view")
    assert ingestion.flush_deferred() == 1 and stored() == 4


def test_an_event_the_database_refuses_is_dropped_and_the_rest_written(
        redis_buffer, broker, user, business):
    """One event no write can store (here a count beyond the column, pushed past the
    checks as an older release could have) is logged and dropped: it must not hold up
    the buffer behind it, flush after flush."""
    import json

    redis, key = redis_buffer
    with pytest.raises(ValidationError) as err:  # the checks refuse it at once now
        ingestion.defer_interaction(user, business, "view", count=2**40)
    assert "count" in err.value.message_dict
    redis.rpush(key, json.dumps([user.pk, business.pk, "view", 1.0, 2**40,
                                 "2026-01-01T00:00:00+00:00"]))
    ingestion.defer_interaction(user, business, "like")
    assert ingestion.flush_deferred() == 1
    assert list(Interaction.objects.values_list("interaction_type", "count")) == [("like", 1)]
    assert redis.llen(key) == 0


@pytest.mark.django_db
def test_a_batch_left_by_a_dead_flusher_is_written_when_its_lease_ends_without_new_events(
        redis_buffer, broker, user, business, monkeypatch):
    """Once traffic stopped after a crash, nothing started a flush again: the batch a
    killed worker held stayed unwritten. A flush that finds a live claim now schedules
    one flush for when its lease runs out (once per lease)."""
    from xo_recommender.tasks import flush_interactions

    redis, key = redis_buffer
    for t in ("view", "like", "save"):
        ingestion.defer_interaction(user, business, t)
    _claim_batch(redis, key)  # then the worker was killed
    later = []
    monkeypatch.setattr(flush_interactions, "apply_async",
                        lambda args=(), **kw: later.append((args, kw.get("countdown"))))
    assert ingestion.flush_deferred() == 0
    assert ingestion.flush_deferred() == 0  # a second look schedules nothing more
    [(args, countdown)] = later
    assert args == (key,) and 55 < countdown <= 61.5  # _claim_batch's lease: 60 s
    _lease_runs_out(redis, key)
    assert ingestion.flush_deferred() == 3 and stored() == 3  # what that flush does


def test_a_worker_that_starts_flushes_what_is_buffered(redis_buffer, broker):
    from xo_recommender.tasks import flush_interactions, flush_when_a_worker_starts

    _, key = redis_buffer
    flush_when_a_worker_starts(sender=None)
    assert broker == [(key,)]
    assert flush_interactions.acks_late and flush_interactions.reject_on_worker_lost


@pytest.mark.django_db
def test_the_buffer_is_the_sites_own_and_an_older_versions_is_still_written(
        redis_buffer, user, business):
    import json

    from django.utils import timezone

    from xo_recommender import cache

    redis, key = redis_buffer
    assert cache.site_prefix() in key  # another site's events never land here
    legacy = ingestion._legacy_key()
    redis.rpush(legacy, json.dumps([user.pk, business.pk, "like", 1.0, 1,
                                    timezone.now().isoformat()]))
    try:
        assert ingestion.flush_deferred() == 1
        assert Interaction.objects.get(user=user, business=business).interaction_type == "like"
        assert redis.llen(legacy) == 0
    finally:
        redis.delete(legacy, f"{legacy}:scheduled", f"{legacy}:claims")
