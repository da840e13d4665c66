"""The SQL views: created by migration on this database, mapped, reversible, rebuildable."""

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import sources
from xo_recommender.models import RecBusiness, RecUser, SourceView

DEMO_MAPPING = {
    "USER_FIELDS": {"latitude": "home_latitude", "longitude": "home_longitude"},
    "BUSINESS_FIELDS": {"categories": "categories__name", "popularity": "popularity_score"},
}


def view_names():
    return set(connection.introspection.table_names(include_views=True)) & {
        sources.USER_VIEW, sources.BUSINESS_VIEW}


@pytest.mark.django_db
def test_migrations_created_both_views():
    assert view_names() == {sources.USER_VIEW, sources.BUSINESS_VIEW}
    assert sources.view_status(connection, apps, SourceView) == {
        sources.USER_VIEW: "ok", sources.BUSINESS_VIEW: "ok"}


@pytest.mark.django_db
def test_business_view_reads_mapped_host_columns_and_m2m_terms():
    cafe = CategoryFactory(name="Coffee", slug="coffee")
    books = CategoryFactory(name="Books", slug="books")
    host = BusinessFactory(name="Sweet Auburn Books", categories=[cafe, books],
                           tags=["vegan", "late-night"], latitude=33.75, longitude=-84.38,
                           popularity_score=42.5, rating=4.2, is_active=False)
    BusinessFactory(name="No categories", tags={"not": "a list"})

    rec = RecBusiness.objects.get(pk=host.pk)
    assert rec.name == "Sweet Auburn Books"
    assert rec.categories == ["Books", "Coffee"]  # many-to-many labels, sorted
    assert rec.tags == ["vegan", "late-night"]  # JSON list, as stored
    assert (rec.latitude, rec.longitude) == pytest.approx((33.75, -84.38))
    assert rec.popularity == pytest.approx(42.5)  # host column popularity_score
    assert rec.rating == pytest.approx(4.2)
    assert rec.is_active is False

    empty = RecBusiness.objects.get(name="No categories")
    assert empty.categories == [] and empty.tags == []  # no rows / not a JSON list → []


@pytest.mark.django_db
def test_user_view_reads_json_interests_and_renamed_coordinate_columns():
    host = UserFactory(interests=["jazz", "vegan food"], home_latitude=40.71,
                       home_longitude=-74.0)
    rec = RecUser.objects.get(pk=host.pk)
    assert rec.interests == ["jazz", "vegan food"]
    assert (rec.latitude, rec.longitude) == pytest.approx((40.71, -74.0))
    assert rec.is_active is True


@pytest.mark.django_db
def test_changed_mapping_is_stale_until_recreated_and_supports_json_and_m2m_labels():
    host = BusinessFactory(categories=[CategoryFactory(name="Hair Salon", slug="hair-salon")],
                           tags=["braids"], rating=None)
    UserFactory()  # with a home and interests on the host, neither mapped below
    mapping = {
        "USER_FIELDS": {**DEMO_MAPPING["USER_FIELDS"], "interests": None,
                        "latitude": None, "longitude": None},  # a host without homes
        # categories from the JSON field this time, tags from the M2M's slug
        "BUSINESS_FIELDS": {"categories": "tags", "tags": "categories__slug",
                            "popularity": None, "rating": None},
    }
    with override_settings(XO_RECOMMENDER=mapping):
        assert set(sources.view_status(connection, apps, SourceView).values()) == {"stale"}
        call_command("recommender_views", "create", verbosity=0)
        assert set(sources.view_status(connection, apps, SourceView).values()) == {"ok"}
        rec = RecBusiness.objects.get(pk=host.pk)
        assert rec.categories == ["braids"]
        assert rec.tags == ["hair-salon"]
        assert rec.rating is None and rec.popularity is None
        assert RecUser.objects.filter(interests=[]).count() == RecUser.objects.count()
        assert RecUser.objects.exists()
        assert RecUser.objects.filter(latitude__isnull=True,
                                      longitude__isnull=True).count() == RecUser.objects.count()
    # back on the configured mapping: the installed views are now the stale ones
    assert set(sources.view_status(connection, apps, SourceView).values()) == {"stale"}
    call_command("recommender_views", "create", verbosity=0)
    assert RecBusiness.objects.get(pk=host.pk).categories == ["Hair Salon"]


@pytest.mark.django_db
def test_status_command_fails_when_a_view_is_missing():
    sources.drop_views(connection)
    with pytest.raises(CommandError, match="recommender_views create"):
        call_command("recommender_views", verbosity=0)
    call_command("recommender_views", "create", verbosity=0)
    call_command("recommender_views", verbosity=0)  # all ok: no error


@pytest.mark.django_db(transaction=True)
def test_view_migration_reverses_cleanly_and_reapplies():
    executor = MigrationExecutor(connection)
    executor.migrate([("xo_recommender", "0001_initial")])
    assert view_names() == set()
    assert not SourceView.objects.exists()

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("xo_recommender", "0002_source_views")])
    assert view_names() == {sources.USER_VIEW, sources.BUSINESS_VIEW}
    assert sources.view_status(connection, apps, SourceView) == {
        sources.USER_VIEW: "ok", sources.BUSINESS_VIEW: "ok"}
    executor = MigrationExecutor(connection)  # back to the latest: later tests need it
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_host_migration_altering_a_mapped_column_succeeds_and_views_come_back():
    """PostgreSQL refuses to alter a column a view reads; migrate drops and rebuilds."""
    from django.db import models

    from xo_recommender.signals import drop_views_before_migrate, refresh_views_after_migrate

    config = apps.get_app_config("xo_recommender")
    drop_views_before_migrate(sender=config, using="default", plan=[("fake", False)])
    with connection.schema_editor() as editor:
        business = apps.get_model("xo_black", "Business")
        old = business._meta.get_field("popularity_score")
        new = models.DecimalField(max_digits=12, decimal_places=3, default=0)
        new.set_attributes_from_name("popularity_score")
        new.model = business
        editor.alter_field(business, old, new)
        editor.alter_field(business, new, old)
    assert view_names() == set()
    refresh_views_after_migrate(sender=config, using="default", apps=apps)
    assert view_names() == {sources.USER_VIEW, sources.BUSINESS_VIEW}


@pytest.mark.django_db(transaction=True)
def test_create_before_migrate_fails_with_one_line_naming_the_missing_column():
    """The mapping names a field whose host migration has not run yet: say `migrate`."""
    user_model = apps.get_model("xo_black", "User")
    field = user_model._meta.get_field("home_latitude")
    sources.drop_views(connection, SourceView)
    with connection.schema_editor() as editor:
        editor.remove_field(user_model, field)
    try:
        with pytest.raises(CommandError) as raised:
            call_command("recommender_views", "create", verbosity=0)
        message = str(raised.value)
        assert "\n" not in message
        assert "xo_black_user.home_lat" in message and "migrate" in message
        assert view_names() == set()  # nothing half-done
    finally:
        with connection.schema_editor() as editor:
            editor.add_field(user_model, field)
        call_command("recommender_views", "create", verbosity=0)
    assert view_names() == {sources.USER_VIEW, sources.BUSINESS_VIEW}


@pytest.mark.django_db
def test_drop_command_removes_both_views_and_create_brings_them_back():
    call_command("recommender_views", "drop", verbosity=0)
    assert view_names() == set()
    with pytest.raises(CommandError):
        call_command("recommender_views", "status", verbosity=0)
    call_command("recommender_views", "create", verbosity=0)
    assert view_names() == {sources.USER_VIEW, sources.BUSINESS_VIEW}
