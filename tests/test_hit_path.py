"""The cache-hit path of ``GET {user_id}/``: what a hit may still list after a business
is deactivated or deleted (at once through the ORM, within ``ACTIVE_CHECK_INTERVAL_MS``
by any other means), what it costs in queries, and that its JSON is the serializer's."""

import json
import re
import time

import pytest
from django.db import connection
from rest_framework.renderers import JSONRenderer

from tests.test_api import API, client_for
from xo_recommender import cache
from xo_recommender.api import serializers as s
from xo_recommender.models import Interaction
from xo_recommender.services import recommendation_page

pytest_plugins = ["tests.test_api"]


def listed(client):
    answer = client.get(f"{API}me/").json()
    return answer["cached"], [r["business_id"] for r in answer["recommendations"]]


def interval(settings, ms):
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "ACTIVE_CHECK_INTERVAL_MS": ms}


def deactivate_and_delete_in_sql(deactivated, deleted):
    """What a host script does behind Django's back: no signal, no invalidation."""
    business_model = Interaction.business.field.related_model
    q = connection.ops.quote_name
    table = q(business_model._meta.db_table)
    through = q(business_model.categories.through._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET is_active = %s WHERE id = %s", [False, deactivated])
        cursor.execute(f"DELETE FROM {through} WHERE business_id = %s", [deleted])
        cursor.execute(f"DELETE FROM {Interaction._meta.db_table} WHERE business_id = %s",
                       [deleted])
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [deleted])


@pytest.mark.django_db
def test_a_change_behind_signals_leaves_cached_pages_within_the_interval(built, settings):
    client = client_for(built["owner"])
    interval(settings, 60_000)
    listed(client)
    cached, shown = listed(client)  # a hit: this process reads the page's flags
    assert cached and len(shown) >= 2
    deactivate_and_delete_in_sql(shown[0], shown[1])
    cached, now = listed(client)
    assert cached and now == shown  # inside the interval: the flags read before are trusted

    interval(settings, 200)
    time.sleep(0.25)  # the flags are now older than the interval: read again
    cached, now = listed(client)
    assert cached is True  # still the cached ranking…
    assert shown[0] not in now and shown[1] not in now  # …without either business
    assert now == [b for b in shown if b not in shown[:2]][:len(now)]


@pytest.mark.django_db
def test_with_interval_zero_every_hit_reads_the_host_table(built, settings):
    client = client_for(built["owner"])
    interval(settings, 0)
    listed(client)
    cached, shown = listed(client)
    assert cached
    deactivate_and_delete_in_sql(shown[0], shown[1])
    cached, now = listed(client)
    assert cached and shown[0] not in now and shown[1] not in now


@pytest.mark.django_db
def test_an_orm_change_leaves_the_page_at_once_whatever_the_interval(
        built, settings, django_capture_on_commit_callbacks):
    client = client_for(built["owner"])
    interval(settings, 60_000)
    listed(client)
    cached, shown = listed(client)
    assert cached and len(shown) >= 2
    business_model = Interaction.business.field.related_model
    first = business_model.objects.get(pk=shown[0])
    with django_capture_on_commit_callbacks(execute=True):  # the signals run on commit
        first.is_active = False
        first.save()
        business_model.objects.get(pk=shown[1]).delete()
    _, now = listed(client)
    assert shown[0] not in now and shown[1] not in now


@pytest.mark.django_db
def test_a_hit_with_fresh_flags_asks_the_database_nothing(
        built, settings, django_assert_max_num_queries):
    owner = built["owner"]
    interval(settings, 60_000)
    recommendation_page(owner.pk)
    assert recommendation_page(owner.pk).cached  # reads the page's flags
    with django_assert_max_num_queries(1):  # at most the active version, when its TTL ran out
        page = recommendation_page(owner.pk)
    assert page.cached and page.items
    assert not recommendation_page(built["other"].pk).cached  # another user's page
    with django_assert_max_num_queries(2):  # its ids not shown before are read, once
        assert recommendation_page(built["other"].pk).cached
    with django_assert_max_num_queries(1):
        assert recommendation_page(built["other"].pk).cached


@pytest.mark.django_db
def test_a_ranking_computed_here_counts_as_read(built, settings, django_assert_num_queries):
    interval(settings, 60_000)
    assert not recommendation_page(built["owner"].pk).cached  # read from the view
    with django_assert_num_queries(0):  # so its hit reads no flags
        assert recommendation_page(built["owner"].pk).cached


@pytest.mark.django_db
def test_flags_older_than_the_interval_are_read_again_one_query_a_hit(
        built, settings, django_assert_num_queries, django_assert_max_num_queries):
    interval(settings, 100)
    users = [built["owner"], built["other"], *built["coffee"][1:]]
    for user in users:
        recommendation_page(user.pk)
        recommendation_page(user.pk)
    time.sleep(0.15)  # every flag is now older than the interval
    cache.publish_model_version(recommendation_page(users[0].pk).model_version)
    time.sleep(0.15)
    with django_assert_num_queries(1) as captured:
        page = recommendation_page(users[1].pk)
    assert page.cached and page.items
    read = {int(n) for n in re.findall(r"\d+", captured.captured_queries[0]["sql"])}
    assert {item.business_id for item in page.items} <= read  # the page's flags, afresh
    for user in users:  # never more than one query for a hit
        with django_assert_max_num_queries(1):
            assert recommendation_page(user.pk).cached


@pytest.mark.django_db
def test_hit_and_miss_answer_the_same_json(built):
    client = client_for(built["owner"])
    for query in ({}, {"limit": 3, "offset": 1}, {"lat": 33.7, "lng": -84.4}):
        miss = client.get(f"{API}me/", query)
        hit = client.get(f"{API}me/", query)
        assert miss.json()["cached"] is False and hit.json()["cached"] is True
        assert json.loads(miss.content) == {**json.loads(hit.content), "cached": False}
        assert hit.content.replace(b'"cached":true', b'"cached":false') == miss.content


@pytest.mark.django_db
def test_the_direct_rendering_is_the_serializers(built):
    owner = built["owner"]
    renderer = JSONRenderer()
    for page in (recommendation_page(owner.pk, 5), recommendation_page(owner.pk, 5),
                 recommendation_page(owner.pk, 3, near=(33.7, -84.4))):
        assert page.items
        expected = s.RecommendationsResponseSerializer(page).data
        assert s.recommendations_data(page) == expected
        assert renderer.render(s.recommendations_data(page)) == renderer.render(expected)
    assert any(item.distance_km is not None for item in page.items)


@pytest.mark.django_db
def test_remembered_queries_still_answer_bad_input_and_follow_max_results(built, settings):
    client = client_for(built["owner"])
    for _ in range(2):
        response = client.get(f"{API}me/", {"limit": "zero"})
        assert response.status_code == 400 and "limit" in response.json()
    assert client.get(f"{API}me/", {"limit": 5}).status_code == 200
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "MAX_RESULTS": 4}
    response = client.get(f"{API}me/", {"limit": 5})
    assert response.status_code == 400 and "limit" in response.json()
    assert len(client.get(f"{API}me/", {"limit": 4}).json()["recommendations"]) <= 4


def test_reads_are_spread_over_requests_a_slice_at_a_time(monkeypatch):
    from types import SimpleNamespace

    from xo_recommender.services import active_flags as ranking

    reads, inactive = [], {5}
    monkeypatch.setattr(ranking.ActiveFlags, "_read",
                        staticmethod(lambda ids, using: reads.append(set(ids))
                                     or set(ids) - inactive))
    clock = [100.0]
    monkeypatch.setattr(ranking, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    flags = ranking.ActiveFlags()
    ids = list(range(1, 81))  # ten in each of the eight slices
    assert flags.listable(ids, 1.0) == set(ids) - {5} and len(reads) == 1
    clock[0] += 0.5
    inactive.add(6)
    assert flags.listable(ids, 1.0) == set(ids) - {5}  # fresh: trusted, nothing read
    assert len(reads) == 1
    clock[0] += 0.4  # past 7/8 of the interval: each request reads the oldest slice
    assert flags.listable([1], 1.0) == {1} and reads[-1] == set(range(8, 81, 8))
    assert flags.listable([1], 1.0) == {1} and reads[-1] == set(range(1, 81, 8))
    assert len(reads) == 3
    clock[0] += 0.2  # past the interval: a page in stale slices reads them (and the
    assert flags.listable([5, 6, 7], 1.0) == {7}  # oldest slice) in one query
    assert len(reads) == 4 and reads[-1] == {i for i in ids if i % 8 in (2, 5, 6, 7)}


def business_reads(captured):
    """The queries that read the host's business table."""
    table = Interaction.business.field.related_model._meta.db_table
    return [q["sql"] for q in captured.captured_queries if table in q["sql"]]


def refreshed_since(moment, deadline=30.0):
    """Wait until the refresher has read every slice again after ``moment``."""
    from xo_recommender.services.active_flags import active_flags

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with active_flags.lock:
            reads = [at for read_at, flags in active_flags.memory.values()
                     for at, slice_ in zip(read_at, flags, strict=True) if slice_]
        if reads and min(reads) > moment:
            return
        time.sleep(0.02)
    raise AssertionError("the refresher read nothing")


@pytest.mark.django_db(transaction=True)
def test_with_the_refresher_hits_read_no_flags_and_a_change_behind_signals_still_leaves(
        built, settings, django_assert_max_num_queries):
    from xo_recommender.services.active_flags import forget_active_flags

    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "ACTIVE_CHECK_INTERVAL_MS": 2000,
                               "ACTIVE_CHECK_BACKGROUND": True}
    client = client_for(built["owner"])
    try:
        listed(client)
        cached, shown = listed(client)  # the thread starts with this hit's flags
        assert cached and len(shown) >= 2
        refreshed_since(time.monotonic())
        with django_assert_max_num_queries(1) as captured:  # at most the active version
            assert listed(client) == (True, shown)
        assert business_reads(captured) == []  # the thread read the flags, not the hit

        deactivate_and_delete_in_sql(shown[0], shown[1])  # committed: no signal
        refreshed_since(time.monotonic())
        with django_assert_max_num_queries(1) as captured:
            cached, now = listed(client)
        assert business_reads(captured) == []
        assert cached and shown[0] not in now and shown[1] not in now
        assert now == [b for b in shown if b not in shown[:2]][:len(now)]
    finally:
        forget_active_flags()  # ends the thread and closes its connection


def test_a_hit_reads_flags_the_refresher_left_stale(monkeypatch):
    """Whatever the thread does, a hit never trusts a flag older than the interval."""
    from types import SimpleNamespace

    from xo_recommender.services import active_flags as module

    reads = []
    monkeypatch.setattr(module.ActiveFlags, "_read",
                        staticmethod(lambda ids, using: reads.append(set(ids)) or set(ids)))
    monkeypatch.setattr(module.ActiveFlags, "_refresher_running", lambda self: True)
    clock = [100.0]
    monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    flags = module.ActiveFlags()
    ids = list(range(1, 17))
    assert flags.listable(ids, 1.0, background=True) == set(ids) and len(reads) == 1
    clock[0] += 0.9  # young enough: trusted, and the oldest slice is the thread's to read
    assert flags.listable(ids, 1.0, background=True) == set(ids) and len(reads) == 1
    clock[0] += 0.2  # the thread did not read them in time: the hit does
    assert flags.listable([3], 1.0, background=True) == {3}
    assert len(reads) == 2 and reads[-1] == {3, 11}


@pytest.mark.django_db
def test_a_hit_sends_what_the_renderer_would(built):
    client = client_for(built["owner"])
    miss = client.get(f"{API}me/", {"limit": 4})
    hit = client.get(f"{API}me/", {"limit": 4})
    assert hit.json()["cached"] is True and not hasattr(hit, "data")  # the stored bytes
    for header in ("Content-Type", "Vary", "Allow"):
        assert hit[header] == miss[header]
    assert hit.content == JSONRenderer().render({**miss.json(), "cached": True})
    pretty = client.get(f"{API}me/", {"limit": 4}, HTTP_ACCEPT="application/json; indent=2")
    assert pretty.json() == hit.json() and pretty.content.startswith(b'{\n  "user_id"')
    browsable = client.get(f"{API}me/", {"limit": 4, "format": "api"})
    assert browsable.status_code == 200 and browsable["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_page_missing_a_business_is_rendered_afresh(built, settings):
    client = client_for(built["owner"])
    interval(settings, 0)
    listed(client)
    cached, shown = listed(client)
    deactivate_and_delete_in_sql(shown[0], shown[1])
    hit = client.get(f"{API}me/")
    assert hit.json()["cached"] is True and hasattr(hit, "data")  # rendered by DRF
    assert [r["business_id"] for r in hit.json()["recommendations"]][:len(shown) - 2] \
        == shown[2:]


@pytest.mark.django_db
def test_remembered_cache_keys_keep_types_and_settings_apart(built, settings):
    from xo_recommender.exceptions import InvalidArgument

    owner = built["owner"]
    assert not recommendation_page(owner.pk, 1).cached
    assert recommendation_page(owner.pk, 1).cached
    with pytest.raises(InvalidArgument):  # True == 1, yet not the same query
        recommendation_page(owner.pk, True)
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "SITE_NAME": "Elsewhere"}
    assert not recommendation_page(owner.pk, 1).cached  # the site's name is in the key
