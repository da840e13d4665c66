"""Businesses created after the last rebuild are recommended before the next one."""

import pytest

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import artifacts, cache, recommend_for, record_interaction
from xo_recommender.services import newcomers, rebuild
from xo_recommender.services.ranking import popular_businesses, similar_businesses

ATL = (33.749, -84.388)
NYC = (40.713, -74.006)

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    coffee = CategoryFactory(name="Coffee", slug="coffee")
    books = CategoryFactory(name="Books", slug="books")
    cafes = [BusinessFactory(name=f"Cafe {i}", categories=[coffee],
                             latitude=ATL[0] + 0.02 * (i + 1), longitude=ATL[1],
                             rating=3.8) for i in range(6)]
    shops = [BusinessFactory(name=f"Bookshop {i}", categories=[books],
                             latitude=ATL[0] - 0.01 * (i + 1), longitude=ATL[1])
             for i in range(4)]
    for i in range(12):
        user = UserFactory(interests=["coffee"] if i % 2 else ["books"])
        for business in (cafes[:3] if i % 2 else shops[:3]):
            record_interaction(user, business, "like")
    rebuild()
    newcomers.forget()
    return {"coffee": coffee, "books": books, "cafes": cafes, "shops": shops}


def ids(results):
    return [r.business.pk for r in results]


def test_a_business_created_after_the_rebuild_is_recommended(site):
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1], rating=4.9)
    _, model = artifacts.active_model()
    assert fresh.pk not in model.items.ids  # the model has never seen it
    results = recommend_for(UserFactory(interests=["coffee"]), limit=3)
    assert fresh.pk in ids(results)
    item = next(r for r in results if r.business.pk == fresh.pk)
    assert item.reasons and item.distance_km is not None and item.distance_km < 1.0


def test_newcomers_follow_the_request_and_the_host_flags(site):
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1])
    closed = BusinessFactory(name="Closed Cafe", categories=[site["coffee"]],
                             latitude=ATL[0], longitude=ATL[1], is_active=False)
    far = BusinessFactory(name="Far Cafe", categories=[site["coffee"]],
                          latitude=NYC[0], longitude=NYC[1])
    user = UserFactory(interests=["coffee"])
    results = recommend_for(user, limit=20)
    everything = ids(results)
    assert fresh.pk in everything and far.pk in everything and closed.pk not in everything
    out_of_reach = [r.distance_km is not None and r.distance_km > 50 for r in results]
    assert out_of_reach == sorted(out_of_reach)  # all within reach first, newcomers too
    assert out_of_reach[everything.index(far.pk)] and not all(out_of_reach)
    assert fresh.pk not in ids(recommend_for(user, limit=20, category="books"))
    assert fresh.pk not in ids(recommend_for(user, limit=20, exclude=[fresh]))
    assert far.pk not in ids(recommend_for(user, limit=20, radius_km=50))


def test_for_a_user_without_a_home_newcomers_are_ranked_from_where_they_go(site):
    # this user went to New York's only café; two cafés open after the rebuild, one
    # around the corner from it and one in Atlanta
    nyc_cafe = BusinessFactory(name="NYC Cafe", categories=[site["coffee"]],
                               latitude=NYC[0], longitude=NYC[1])
    rebuild()
    newcomers.forget()
    nyc_fresh = BusinessFactory(name="NYC Fresh", categories=[site["coffee"]],
                                latitude=NYC[0] + 0.005, longitude=NYC[1], rating=3.0)
    atl_fresh = BusinessFactory(name="ATL Fresh", categories=[site["coffee"]],
                                latitude=ATL[0], longitude=ATL[1], rating=4.9)
    user = UserFactory(interests=["coffee"], home_latitude=None, home_longitude=None)
    record_interaction(user, nyc_cafe, "like")
    results = recommend_for(user, limit=20)
    assert ids(results)[0] == nyc_fresh.pk  # all else is out of reach of New York
    assert atl_fresh.pk in ids(results)
    assert all(r.distance_km is None for r in results)  # no point the user gave
    first = results[0].reasons
    assert "Near places you often go" in first
    assert not any("km" in reason or "near you" in reason for r in results
                   for reason in r.reasons)


def test_the_next_rebuild_knows_them(site):
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]])
    rebuild()
    version_id, model = artifacts.active_model()
    assert fresh.pk in model.items.ids
    assert len(newcomers.newcomers(version_id, model)) == 0


def listed(answer):
    return [item["business_id"] for item in answer["results"]]


def test_a_newcomer_has_a_more_like_this_list_at_once(site):
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1])
    twin = BusinessFactory(name="Twin Cafe", categories=[site["coffee"]],
                           latitude=ATL[0] + 0.001, longitude=ATL[1])
    answer = similar_businesses(fresh.pk, limit=4)
    assert listed(answer) and fresh.pk not in listed(answer)
    # the same kind of place, the nearest first: the other newcomer, then the known cafés
    assert listed(answer) == [twin.pk, *(b.pk for b in site["cafes"][:3])]
    assert not set(listed(answer)) & {b.pk for b in site["shops"]}
    # what they share, the rarer term first (every business here is family-owned)
    assert all(item["reasons"] == ["Also Coffee, family-owned"]
               for item in answer["results"])


def test_newcomers_follow_a_known_business_s_own_neighbours(site):
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1])
    BusinessFactory(name="Closed Cafe", categories=[site["coffee"]], latitude=ATL[0],
                    longitude=ATL[1], is_active=False)
    known = similar_businesses(site["cafes"][0].pk, limit=20)
    ids_ = listed(known)
    assert fresh.pk in ids_
    model_neighbours = [i for i in ids_ if i != fresh.pk]
    assert model_neighbours and ids_.index(fresh.pk) == len(model_neighbours)  # last
    assert len(ids_) == len(set(ids_))


def test_a_newcomer_joins_the_popular_list(site):
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1], rating=4.9)
    closed = BusinessFactory(name="Closed Cafe", categories=[site["coffee"]],
                             latitude=ATL[0], longitude=ATL[1], is_active=False)
    everything = listed(popular_businesses(limit=20, near=ATL))
    assert fresh.pk in everything and closed.pk not in everything
    assert fresh.pk not in listed(popular_businesses(limit=20, near=ATL, category="books"))


def test_each_process_reads_the_newcomers_again_after_the_refresh_interval(site, monkeypatch):
    user = UserFactory(interests=["coffee"])
    recommend_for(user, limit=20)  # this process now holds the (empty) list
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1])  # by another process,
    # its counter not bumped (or the cache down): the list is read again after the interval
    assert fresh.pk not in ids(recommend_for(user, limit=19))  # (other pages: no cache hit)
    monkeypatch.setattr(newcomers, "REFRESH_SECONDS", 0.0)  # the interval has passed
    assert fresh.pk in ids(recommend_for(user, limit=18))


def test_only_the_newest_newcomers_take_part(site, monkeypatch):
    older = BusinessFactory(name="Older Cafe", categories=[site["coffee"]])
    newer = BusinessFactory(name="Newer Cafe", categories=[site["coffee"]])
    monkeypatch.setattr(newcomers, "MAX_NEWCOMERS", 1)
    version_id, model = artifacts.active_model()
    listed_ids = list(newcomers.newcomers(version_id, model).ids)
    assert listed_ids == [newer.pk] and older.pk not in listed_ids


def test_a_business_reactivated_since_the_rebuild_waits_for_the_next(
        site, django_capture_on_commit_callbacks):
    from example_project.xo_black.models import Business

    closed = BusinessFactory(name="Closed Cafe", categories=[site["coffee"]],
                             latitude=ATL[0], longitude=ATL[1], is_active=False)
    rebuild()  # knows it, as inactive
    Business.objects.filter(pk=closed.pk).update(is_active=True)
    user = UserFactory(interests=["coffee"])
    assert closed.pk not in ids(recommend_for(user, limit=20))
    with django_capture_on_commit_callbacks(execute=True):  # the new version is published
        rebuild()
    assert closed.pk in ids(recommend_for(user, limit=20))


def test_a_business_created_by_another_process_joins_the_next_page_computed_here(
        site, monkeypatch):
    """The other process's commit bumps the newcomers' counter: this process reads its
    list again at its next miss, not after its refresh interval (it was 30 s, and a page
    computed meanwhile left the new business out for as long as it stayed cached)."""
    user = UserFactory(interests=["coffee"])
    recommend_for(user, limit=20)  # this process now holds the (empty) list
    fresh = BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]],
                            latitude=ATL[0], longitude=ATL[1])  # another process's commit
    cache.note_new_business()  # ... and what it does after it
    assert fresh.pk not in ids(recommend_for(user, limit=19))  # read less than 1 s ago
    monkeypatch.setattr(newcomers, "MIN_REREAD_SECONDS", 0.0)  # that second has passed
    assert fresh.pk in ids(recommend_for(user, limit=18))


def test_creating_a_business_bumps_the_newcomers_counter_after_the_commit(
        site, django_capture_on_commit_callbacks):
    before = cache.newcomers_generation()
    with django_capture_on_commit_callbacks(execute=True):
        BusinessFactory(name="Fresh Cafe", categories=[site["coffee"]])
        assert cache.newcomers_generation() == before  # not before the commit
    assert cache.newcomers_generation() not in (None, before)
