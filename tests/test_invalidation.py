"""The cache: hits, versioned invalidation by signals and services, stampede guard, and
answers without errors when the cache backend is down."""

import threading
from unittest import mock

import pytest
from django.core.cache import caches

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import cache, record_interaction
from xo_recommender.services import health, rebuild, recommendation_payload


@pytest.fixture
def world(db, django_capture_on_commit_callbacks):
    coffee = CategoryFactory(name="Coffee", slug="coffee")
    cafes = [BusinessFactory(name=f"Cafe {i}", categories=[coffee]) for i in range(5)]
    people = [UserFactory(interests=["coffee"]) for _ in range(4)]
    with django_capture_on_commit_callbacks(execute=True):
        for u in people:
            for b in cafes[:3]:
                record_interaction(u, b, "like")
        rebuild()
    return {"cafes": cafes, "people": people}


def test_second_identical_request_is_a_cache_hit(world):
    user = world["people"][0]
    first = recommendation_payload(user.pk, 3)
    second = recommendation_payload(user.pk, 3)
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["recommendations"] == second["recommendations"]
    assert recommendation_payload(user.pk, 2)["cached"] is False  # other parameters


def test_recorded_interaction_retires_only_that_users_entries(
        world, django_capture_on_commit_callbacks):
    alice, bob = world["people"][:2]
    recommendation_payload(alice.pk, 3)
    recommendation_payload(bob.pk, 3)
    with django_capture_on_commit_callbacks(execute=True):
        record_interaction(alice, world["cafes"][3], "like")
    fresh = recommendation_payload(alice.pk, 3)
    assert fresh["cached"] is False
    assert world["cafes"][3].pk not in [r["business_id"] for r in fresh["recommendations"]]
    assert recommendation_payload(bob.pk, 3)["cached"] is True


def test_host_user_save_invalidates_that_user(world, django_capture_on_commit_callbacks):
    alice, bob = world["people"][:2]
    recommendation_payload(alice.pk, 3)
    recommendation_payload(bob.pk, 3)
    alice.interests = ["tea"]
    with django_capture_on_commit_callbacks(execute=True):  # retired once committed
        alice.save()
    assert recommendation_payload(alice.pk, 3)["cached"] is False
    assert recommendation_payload(bob.pk, 3)["cached"] is True


def test_business_change_retires_exactly_the_lists_that_show_it(
        world, django_capture_on_commit_callbacks):
    alice, bob = world["people"][:2]
    listed, unlisted = world["cafes"][4], world["cafes"][0]  # cafes 0-2 are liked: hidden
    for user in (alice, bob):
        assert listed.pk in [r["business_id"] for r in
                             recommendation_payload(user.pk, 5)["recommendations"]]
    with django_capture_on_commit_callbacks(execute=True):
        unlisted.name = "Nobody sees this"
        unlisted.save()
    assert recommendation_payload(alice.pk, 5)["cached"] is True  # not in the list

    with django_capture_on_commit_callbacks(execute=True):
        listed.name = "Cafe Renamed"
        listed.save()
    for user in (alice, bob):
        payload = recommendation_payload(user.pk, 5)
        assert payload["cached"] is False
        assert "Cafe Renamed" in [r["name"] for r in payload["recommendations"]]
        assert recommendation_payload(user.pk, 5)["cached"] is True

    with django_capture_on_commit_callbacks(execute=True):
        listed.delete()
    payload = recommendation_payload(alice.pk, 5)
    assert payload["cached"] is False
    assert listed.pk not in [r["business_id"] for r in payload["recommendations"]]


def test_a_new_business_retires_nothing_and_a_catalogue_wide_change_everything(
        world, django_capture_on_commit_callbacks):
    alice = world["people"][0]
    recommendation_payload(alice.pk, 5)
    with django_capture_on_commit_callbacks(execute=True):
        BusinessFactory(name="Opened today")  # in no list until the next rebuild
    assert recommendation_payload(alice.pk, 5)["cached"] is True
    cache.invalidate_catalogue()
    assert recommendation_payload(alice.pk, 5)["cached"] is False


def test_a_lost_change_record_retires_the_entry(world, django_capture_on_commit_callbacks):
    from django.core.cache import caches

    alice = world["people"][0]
    recommendation_payload(alice.pk, 5)
    cache.invalidate_business(world["cafes"][0].pk)  # not listed ...
    generation = caches["default"].get(cache.catalogue_generation_key())
    caches["default"].delete(f"{cache.site_prefix()}:catalogue:change:{generation}")  # ... unknown
    assert recommendation_payload(alice.pk, 5)["cached"] is False


def test_interaction_deleted_through_the_orm_invalidates(
        world, django_capture_on_commit_callbacks):
    from xo_recommender.models import Interaction

    alice = world["people"][0]
    recommendation_payload(alice.pk, 3)
    with django_capture_on_commit_callbacks(execute=True):
        Interaction.objects.filter(user=alice).first().delete()
    assert recommendation_payload(alice.pk, 3)["cached"] is False


def test_a_rebuild_changes_the_key(world, django_capture_on_commit_callbacks):
    alice = world["people"][0]
    before = recommendation_payload(alice.pk, 3)
    with django_capture_on_commit_callbacks(execute=True):
        new = rebuild()
    after = recommendation_payload(alice.pk, 3)
    assert after["cached"] is False
    assert (before["model_version"], after["model_version"]) != (new.pk, new.pk)
    assert after["model_version"] == new.pk


def test_cache_down_means_computed_answers_and_a_degraded_health(world, caplog):
    alice = world["people"][0]
    broken = ConnectionError("cache server went away")
    backend = caches["default"]
    with mock.patch.object(type(backend), "get", side_effect=broken), \
            mock.patch.object(type(backend), "get_many", side_effect=broken), \
            mock.patch.object(type(backend), "set", side_effect=broken), \
            mock.patch.object(type(backend), "add", side_effect=broken), \
            mock.patch.object(type(backend), "incr", side_effect=broken):
        payload = recommendation_payload(alice.pk, 3)
        record_interaction(alice, world["cafes"][4], "view")  # invalidation fails quietly
        ok, report = health()
    assert payload["cached"] is False
    assert [r["name"] for r in payload["recommendations"]] == ["Cafe 3", "Cafe 4"]  # 0-2 liked
    assert "cache unavailable" in caplog.text.lower()
    assert ok is True and report["cache"]["status"] == "degraded"
    assert report["database"]["status"] == "up"


def test_stampede_guard_computes_once_per_key(db):
    calls = []
    started = threading.Barrier(6)

    def slow(version):
        calls.append(version)
        threading.Event().wait(0.3)
        return {"value": 42}

    results = []

    def worker():
        started.wait()
        results.append(cache.cached_answer("test", 1, {"limit": 3}, slow, lambda: 7))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [7]
    assert sorted(cached for _, cached in results) == [False] + [True] * 5
    assert all(value == {"value": 42} for value, _ in results)


def test_refresh_user_warms_the_users_default_page(world, django_capture_on_commit_callbacks):
    """The ``refresh_user`` task (e.g. after a bulk import that bypassed the signals)
    drops the user's answers and computes their default page again, so the next request
    is a hit with what the database holds now."""
    from django.utils import timezone

    from xo_recommender.models import Interaction
    from xo_recommender.tasks import refresh_user

    alice = world["people"][0]
    before = recommendation_payload(alice.pk)
    assert world["cafes"][3].pk in [r["business_id"] for r in before["recommendations"]]
    now = timezone.now()
    Interaction.objects.bulk_create([Interaction(  # a bulk import: no signal, no retiring
        user=alice, business=world["cafes"][3], interaction_type="like", first_seen=now,
        last_seen=now)])
    assert recommendation_payload(alice.pk)["cached"] is True  # still the old answer
    refresh_user(alice.pk)
    warm = recommendation_payload(alice.pk)
    assert warm["cached"] is True
    assert world["cafes"][3].pk not in [r["business_id"] for r in warm["recommendations"]]
    refresh_user(10**9)  # an unknown user: nothing to warm, no error


def listed(answer):
    return [r["business_id"] for r in answer["recommendations"]]


def test_a_category_change_through_the_relation_retires_the_lists_showing_it(
        world, django_capture_on_commit_callbacks):
    """``business.categories.set(...)`` sends no post_save of the business: the lists
    that show it kept the old categories (and a category filter the old membership)."""
    user = world["people"][0]
    shown = listed(recommendation_payload(user.pk, 2))[0]
    business = next(b for b in world["cafes"] if b.pk == shown)
    with django_capture_on_commit_callbacks(execute=True):
        business.categories.set([CategoryFactory(name="Tea", slug="tea")])
    again = recommendation_payload(user.pk, 2)
    assert again["cached"] is False
    row = next(r for r in again["recommendations"] if r["business_id"] == shown)
    assert row["categories"] == ["Tea"]


def test_a_category_renamed_retires_every_list(world, django_capture_on_commit_callbacks):
    user = world["people"][0]
    recommendation_payload(user.pk, 2)
    coffee = world["cafes"][0].categories.get()
    with django_capture_on_commit_callbacks(execute=True):
        coffee.name = "Espresso"
        coffee.save()
    again = recommendation_payload(user.pk, 2)
    assert again["cached"] is False
    assert {c for r in again["recommendations"] for c in r["categories"]} == {"Espresso"}


def test_a_business_active_again_comes_back_to_the_lists_it_left(
        world, django_capture_on_commit_callbacks):
    user = world["people"][0]
    first = listed(recommendation_payload(user.pk, 2))
    business = next(b for b in world["cafes"] if b.pk == first[0])
    with django_capture_on_commit_callbacks(execute=True):
        business.is_active = False
        business.save()
    assert first[0] not in listed(recommendation_payload(user.pk, 2))
    assert recommendation_payload(user.pk, 2)["cached"] is True  # computed without it
    with django_capture_on_commit_callbacks(execute=True):
        business.is_active = True
        business.save()
    assert listed(recommendation_payload(user.pk, 2)) == first


def test_an_interaction_moved_to_another_user_retires_both(
        world, django_capture_on_commit_callbacks):
    from xo_recommender.models import Interaction

    alice, bob = world["people"][0], UserFactory(interests=["coffee"])
    recommendation_payload(alice.pk, 3)
    recommendation_payload(bob.pk, 3)
    assert recommendation_payload(alice.pk, 3)["cached"] is True
    moved = Interaction.objects.filter(user_id=alice.pk).first()
    with django_capture_on_commit_callbacks(execute=True):
        moved.user_id = bob.pk
        moved.save()
    assert recommendation_payload(alice.pk, 3)["cached"] is False
    assert recommendation_payload(bob.pk, 3)["cached"] is False


def test_a_user_deleted_outside_the_orm_is_forgotten_by_sync_and_clear(world):
    from django.db import connection

    from xo_recommender.exceptions import UnknownUser
    from xo_recommender.services import clear_user_cache, sync_user

    for forget in (sync_user, clear_user_cache):
        user = UserFactory(interests=["coffee"])
        assert recommendation_payload(user.pk, 2)["cached"] is False
        assert recommendation_payload(user.pk, 2)["cached"] is True
        with connection.cursor() as cursor:  # as raw SQL in the host would
            cursor.execute(f"DELETE FROM {user._meta.db_table} WHERE id = %s", [user.pk])
        with pytest.raises(UnknownUser):
            forget(user.pk)
        with pytest.raises(UnknownUser):  # no longer served from the cache
            recommendation_payload(user.pk, 2)
