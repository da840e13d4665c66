"""Signal receivers. They call into ``sources`` / ``services`` and return; no computation."""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

from xo_recommender import cache, sources
from xo_recommender.conf import settings as rec_settings


def drop_views_before_migrate(*, using: str, plan: Any = None, **kwargs: Any) -> None:
    """Drop the views before a migrate that changes a table they read.

    PostgreSQL refuses to alter or drop a host column that a view reads, which would
    make the host's own migrations fail; the views come back in ``post_migrate``. A
    deploy whose migrations touch other tables keeps them, so the live site keeps
    answering while it migrates.
    """
    if plan and plan_touches_views(plan):
        sources.drop_views(connections[using])


def _mapped_models() -> set[tuple[str, str]] | None:
    """``(app_label, model_name)`` of every model the views read; None if unknown."""
    from django.apps import apps as global_apps

    found: set[tuple[str, str]] = set()
    for label, mapping in ((rec_settings.user_model, rec_settings.USER_FIELDS),
                           (rec_settings.business_model, rec_settings.BUSINESS_FIELDS)):
        try:
            model = global_apps.get_model(label)
        except (LookupError, ValueError):
            return None
        found.add((model._meta.app_label, model._meta.model_name))
        for host_name in (mapping or {}).values():
            field = mapped_relation(model, host_name)
            if field is not None:
                related = field.related_model._meta
                found.add((related.app_label, related.model_name))
                through = getattr(field.remote_field, "through", None)
                if through is not None:
                    found.add((through._meta.app_label, through._meta.model_name))
    return found


def mapped_relation(model: Any, host_name: str | None) -> Any:
    """The relation a mapping path starts with (``categories`` of ``categories__name``),
    or None when the path is unset, unknown or a plain field."""
    if not host_name:
        return None
    try:
        field = model._meta.get_field(host_name.partition("__")[0])
    except Exception:
        return None
    return field if field.is_relation and field.related_model is not None else None


def plan_touches_views(plan: Any) -> bool:
    """Whether a migration plan may change a table the views read (unknown: yes).

    Our own migrations, operations on a mapped model, and raw SQL or Python in an app
    that owns a mapped model count; everything else leaves the views alone.
    """
    from django.db.migrations import operations as ops

    models = _mapped_models()
    if models is None:
        return True
    apps = {app for app, _ in models}
    opaque = (ops.RunSQL, ops.RunPython, ops.SeparateDatabaseAndState)
    for migration, _backwards in plan:
        app = getattr(migration, "app_label", None)
        if app is None or app == "xo_recommender":
            return True
        if app not in apps:
            continue
        operations = getattr(migration, "operations", None)
        if operations is None:
            return True
        for op in operations:
            if isinstance(op, opaque):
                return True
            names = {getattr(op, "model_name", None), getattr(op, "name", None),
                     getattr(op, "old_name", None), getattr(op, "new_name", None)}
            if any(isinstance(n, str) and (app, n.lower()) in models for n in names):
                return True
    return False


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


#: Host user fields whose change cannot alter a recommendation: a save of only these
#: (``update_last_login`` on every sign-in) retires nothing.
IRRELEVANT_USER_FIELDS = frozenset({"last_login"})


def user_changed(*, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """A host user was saved or deleted: their cached answers stop being read.

    After the commit, like the other receivers: an answer computed meanwhile from the
    data before the commit is retired too, and a rolled-back save retires nothing.
    """
    if update_fields and set(update_fields) <= IRRELEVANT_USER_FIELDS:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: cache.invalidate_user(user_id))


def business_changed(*, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """A host business was saved or deleted: retire the cached lists that show it.

    A new business is in no cached list yet, so creating one retires nothing; every
    process reads its list of businesses the model does not know again at its next
    miss (``cache.note_new_business``). The change is recorded after the commit (a
    rolled-back save retires nothing).
    """
    if created:
        from xo_recommender.services import newcomers  # services import the models

        transaction.on_commit(newcomers.forget)
        transaction.on_commit(cache.note_new_business)
        return
    field = _active_field(type(instance))
    was = getattr(instance, "_xo_was_active", None)
    if field is not None and was is not None and not was and getattr(instance, field, False):
        transaction.on_commit(cache.invalidate_catalogue)  # active again: back everywhere
        return
    business_id = instance.pk
    transaction.on_commit(lambda: cache.invalidate_business(business_id))


def interaction_loaded(*, instance: Any, **kwargs: Any) -> None:
    """Remember whose an interaction was when it was read, for ``interaction_changed``."""
    instance._xo_loaded_user_id = instance.__dict__.get("user_id")


def interaction_changed(*, instance: Any, **kwargs: Any) -> None:
    """An interaction was edited or deleted through the ORM (admin, a script): retire
    its user's answers, and those of the user it belonged to when read (moved to
    another user, both changed).

    ``record_interaction`` writes with one SQL statement and invalidates by itself.
    """
    user_ids = {instance.user_id, getattr(instance, "_xo_loaded_user_id", None)} - {None}
    transaction.on_commit(lambda: cache.invalidate_users(user_ids))


def business_about_to_change(*, instance: Any, update_fields: Any = None,
                             **kwargs: Any) -> None:
    """Before a business is saved: was it listable? A business made active again must
    come back to the cached lists it was left out of, which no list records."""
    field = _active_field(type(instance))
    instance._xo_was_active = None
    if field is None or instance.pk is None or (update_fields and field not in update_fields):
        return
    instance._xo_was_active = type(instance)._base_manager.filter(pk=instance.pk).values_list(
        field, flat=True).first()


def _active_field(model: Any) -> str | None:
    """The host field behind the view's ``is_active`` (a plain field of the model)."""
    name = (rec_settings.BUSINESS_FIELDS or {}).get("is_active")
    if not name or "__" in name:
        return None
    try:
        model._meta.get_field(name)
    except Exception:
        return None
    return name


def business_categories_changed(*, instance: Any, action: str, reverse: bool,
                                 pk_set: Any = None, **kwargs: Any) -> None:
    """A business's categories (a many-to-many the view reads) changed: the lists that
    show it show other categories now, and a category filter may leave it out."""
    if not action.startswith("post_"):
        return
    if not reverse:
        ids = {instance.pk}
    elif pk_set is not None:
        ids = set(pk_set)
    else:  # category.businesses.clear(): which ones is not said
        transaction.on_commit(cache.invalidate_catalogue)
        return
    transaction.on_commit(lambda: cache.invalidate_businesses(ids))


def category_label_changed(**kwargs: Any) -> None:
    """A category (the model the view reads labels from) was renamed or deleted: every
    business in it is shown otherwise now, so every cached list is retired."""
    transaction.on_commit(cache.invalidate_catalogue)
