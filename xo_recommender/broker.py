"""Whether Celery tasks go to a broker, and sending them there (or running them inline).

Its own module so that ``services`` (health) and ``tasks`` both use it without importing
each other.
"""

from __future__ import annotations

from typing import Any

from celery import current_app


def broker_configured() -> bool:
    """Whether tasks go to a broker; without one (or when eager) they run inline."""
    conf = current_app.conf
    return bool(conf.broker_url) and not conf.task_always_eager


def enqueue(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Send ``task`` to the broker, or run it here and now when there is none.

    Inline runs raise the task's own error, as a direct call would.
    """
    if broker_configured():
        return task.apply_async(args, kwargs)
    return task.apply(args, kwargs, throw=True)
