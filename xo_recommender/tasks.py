"""Celery tasks: thin wrappers over services.

Without a broker (``CELERY_TASK_ALWAYS_EAGER`` or no Celery app configured) the same
functions run inline. A rebuild is idempotent (it only adds a version and flips the
pointer), so it is acknowledged late and retried on database hiccups.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from xo_recommender.broker import broker_configured, enqueue

__all__ = ["broker_configured", "enqueue", "rebuild_recommendations", "refresh_user"]


@shared_task(
    name="xo_recommender.rebuild_recommendations",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 3},
)
def rebuild_recommendations() -> int:
    """Train and activate a new model version; returns its id."""
    from xo_recommender.services import rebuild

    return rebuild().pk


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
