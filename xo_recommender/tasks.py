"""Celery tasks: thin wrappers over services.

Without a broker (``CELERY_TASK_ALWAYS_EAGER`` or no Celery app configured) the same
functions run inline. A rebuild is idempotent (it only adds a version and flips the
pointer), so it is acknowledged late and retried on database hiccups.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

from xo_recommender.broker import broker_configured, enqueue
from xo_recommender.exceptions import RebuildFailed

__all__ = ["broker_configured", "enqueue", "flush_interactions", "rebuild_recommendations",
           "refresh_user"]


logger = logging.getLogger("xo_recommender.tasks")
#: First retry delay of a rebuild (doubling each time).
RETRY_BASE_SECONDS = 2

#: Database errors worth another try: the server restarting, a dropped connection, a
#: statement cancelled by a timeout. Anything else fails the task at once.
TRANSIENT = (OperationalError, InterfaceError)


@shared_task(
    bind=True,
    name="xo_recommender.rebuild_recommendations",
    acks_late=True,
    max_retries=3,
)
def rebuild_recommendations(self: Any) -> int:
    """Train and activate a new model version; returns its id.

    ``rebuild`` reports every failure as ``RebuildFailed``; when the cause was a
    transient database error the task is retried with backoff (2, 4, 8 s) — by the
    worker, or here and now when it runs inline (no broker).
    """
    from xo_recommender.services import rebuild

    attempt = self.request.retries
    while True:
        try:
            return rebuild().pk
        except (RebuildFailed, *TRANSIENT) as exc:
            cause = exc.__cause__ if isinstance(exc, RebuildFailed) else exc
            if not isinstance(cause, TRANSIENT) or attempt >= self.max_retries:
                raise
            delay = RETRY_BASE_SECONDS * 2 ** attempt
            logger.warning("Rebuild failed on a transient database error, retrying in "
                           "%ss: %s", delay, cause)
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=delay) from exc
            attempt += 1
            time.sleep(delay)


@shared_task(
    name="xo_recommender.refresh_user",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 3},
    ignore_result=True,
)
def refresh_user(user_id: int, limit: int = 10) -> None:
    """Forget a user's cached answers and compute their default page again (warm cache)."""
    from xo_recommender.exceptions import RecommenderError
    from xo_recommender.services import clear_user_cache, recommendation_payload

    try:
        clear_user_cache(user_id)
        recommendation_payload(user_id, limit)
    except RecommenderError:
        pass  # unknown or inactive user, or no model yet: nothing to warm


@shared_task(
    name="xo_recommender.flush_interactions",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
    ignore_result=True,
    # A worker killed mid-flush gives the message back (a flush is safe to run twice:
    # each batch is written once, by its token).
    acks_late=True,
    reject_on_worker_lost=True,
)
def flush_interactions(key: str | None = None) -> int:
    """Write the buffered interactions (``services.ingestion``) in batches."""
    from xo_recommender.services.ingestion import flush_deferred

    return flush_deferred(key)


@worker_ready.connect(dispatch_uid="xo_recommender.flush_on_start")
def flush_when_a_worker_starts(**kwargs) -> None:
    """A worker that starts (again, after a crash) flushes what is buffered: events left
    behind by a worker that died are written without waiting for the next event."""
    from xo_recommender.services.ingestion import queue_key

    try:
        key = queue_key()
        if key is not None:
            flush_interactions.apply_async((key,))
    except Exception as exc:  # the worker must start whatever the buffer's state
        logger.warning("Could not schedule the start-up flush of deferred interactions: "
                       "%s", exc)
