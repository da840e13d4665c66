"""Signal receivers. They call into ``sources`` / ``services`` and return; no computation."""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

from xo_recommender import cache, sources


def drop_views_before_migrate(*, using: str, plan: Any = None, **kwargs: Any) -> None:
    """Drop the views before a migrate that has work to do.

    PostgreSQL refuses to alter or drop a host column that a view reads, which would
    make the host's own migrations fail; the views come back in ``post_migrate``.
    """
    if plan:
        sources.drop_views(connections[using])


def refresh_views_after_migrate(*, using: str, apps: Any = None, **kwargs: Any) -> None:
    """Create the views from the current mapping once our view migration is applied.

    ``flush`` sends ``post_migrate`` without ``apps``; the live registry serves then.
    """
    from django.apps import apps as global_apps

    from xo_recommender.models import SourceView

    apps = apps or global_apps
    connection = connections[using]
    if not sources.views_migration_applied(connection):
        return
    try:
        status = sources.view_status(connection, apps, SourceView)
    except sources.SourceMappingError:
        return  # the system checks report the mapping; nothing sensible to build
    if any(state != "ok" for state in status.values()):
        sources.create_views(connection, apps, SourceView)


def user_changed(*, instance: Any, **kwargs: Any) -> None:
    """A host user was saved or deleted: their cached answers stop being read."""
    cache.invalidate_user(instance.pk)


def business_changed(*, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """A host business was saved or deleted: retire the cached lists that show it.

    A new business is in no list until the next rebuild, so creating one retires
    nothing. The change is recorded after the commit (a rolled-back save retires
    nothing).
    """
    if created:
        return
    business_id = instance.pk
    transaction.on_commit(lambda: cache.invalidate_business(business_id))


def interaction_changed(*, instance: Any, **kwargs: Any) -> None:
    """An interaction was edited or deleted through the ORM (admin, a script).

    ``record_interaction`` writes with one SQL statement and invalidates by itself.
    """
    user_id = instance.user_id
    transaction.on_commit(lambda: cache.invalidate_user(user_id))
