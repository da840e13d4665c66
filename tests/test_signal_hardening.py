"""Receivers: a sign-in retires nothing, a user change retires after the commit only, and
a migrate that does not touch the mapped tables keeps the views (the site keeps answering)."""

import pytest
from django.contrib.auth.models import update_last_login
from django.core.cache import caches
from django.db import connection, migrations, models

from tests.factories import UserFactory
from xo_recommender import cache, signals, sources


def generation(user):
    return caches["default"].get(cache.user_generation_key(user.pk))


@pytest.mark.django_db
def test_a_login_retires_nothing(django_capture_on_commit_callbacks):
    user = UserFactory()
    cache.invalidate_user(user.pk)
    before = generation(user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        update_last_login(None, user)
    assert callbacks == []
    assert generation(user) == before


@pytest.mark.django_db
def test_a_user_change_retires_after_the_commit(django_capture_on_commit_callbacks):
    user = UserFactory()
    cache.invalidate_user(user.pk)
    before = generation(user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        user.interests = ["books"]
        user.save()
        assert generation(user) == before  # not yet: the change is not committed
    assert len(callbacks) == 1
    callbacks[0]()
    assert generation(user) == before + 1


def migration(app, *operations):
    m = migrations.Migration("0999_test", app)
    m.operations = list(operations)
    return m


@pytest.mark.parametrize("plan_migration,touches", [
    (migration("xo_black", migrations.AlterField("business", "name",
                                                 models.CharField(max_length=300))), True),
    (migration("xo_black", migrations.RemoveField("user", "home_latitude")), True),
    (migration("xo_black", migrations.AlterField("category", "name",
                                                 models.CharField(max_length=90))), True),
    (migration("xo_black", migrations.RunSQL("SELECT 1")), True),
    (migration("xo_recommender", migrations.RunSQL("SELECT 1")), True),
    (migration("authtoken", migrations.AlterField("token", "key",
                                                  models.CharField(max_length=40))), False),
    (migration("contenttypes", migrations.RunSQL("SELECT 1")), False),
])
def test_which_plans_touch_the_views(plan_migration, touches):
    assert signals.plan_touches_views([(plan_migration, False)]) is touches


@pytest.mark.django_db
def test_a_migrate_of_unrelated_tables_keeps_the_views():
    from django.apps import apps

    from xo_recommender.models import SourceView

    unrelated = migration("authtoken", migrations.AlterField(
        "token", "key", models.CharField(max_length=40)))
    signals.drop_views_before_migrate(using="default", plan=[(unrelated, False)])
    assert set(sources.view_status(connection, apps, SourceView).values()) == {"ok"}
    related = migration("xo_black", migrations.RemoveField("business", "rating"))
    signals.drop_views_before_migrate(using="default", plan=[(related, False)])
    assert set(sources.view_status(connection, apps, SourceView).values()) == {"missing"}
