"""recommend_for and rebuild through the database: cold start, freshness, exclusions,
atomic version switches, failed rebuilds, argument validation, query counts."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import override_settings

from tests.factories import (
    ATL,
    NYC,
    BusinessFactory,
    UserFactory,
    coffee_and_books,
)
from xo_recommender import artifacts, recommend_for, record_interaction
from xo_recommender.exceptions import (
    InactiveUser,
    InvalidArgument,
    ModelNotReady,
    RebuildFailed,
    UnknownUser,
)
from xo_recommender.models import ModelVersion
from xo_recommender.services import rebuild


@pytest.fixture
def world(db):
    return coffee_and_books()


def ids(results):
    return [r.business.pk for r in results]


@pytest.mark.django_db
def test_before_any_rebuild_the_error_says_what_to_run(world):
    with pytest.raises(ModelNotReady, match="rebuild_recommendations"):
        recommend_for(world["coffee_people"][0])


@pytest.mark.django_db
def test_collaborative_signal_recommends_what_similar_users_engaged_with(world):
    rebuild()
    newcomer = UserFactory(interests=[])
    record_interaction(newcomer, world["cafes"][0], "like")
    results = recommend_for(newcomer, 3)
    assert set(ids(results)[:2]) == {world["cafes"][1].pk, world["cafes"][2].pk}
    assert world["cafes"][0].pk not in ids(results)  # liked: excluded by default
    assert any(reason.startswith("Because you liked Cafe 0") for reason in results[0].reasons)


@pytest.mark.django_db
def test_which_types_exclude_a_business_is_read_at_request_time(world, settings):
    rebuild()
    user = world["coffee_people"][0]
    liked = {b.pk for b in world["cafes"][:3]}
    record_interaction(user, world["shops"][0], "view")
    assert not liked & set(ids(recommend_for(user, 20)))  # default: like excludes
    assert world["shops"][0].pk in ids(recommend_for(user, 20))  # a view does not
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "EXCLUDE_INTERACTED_TYPES": ["view"]}
    page = set(ids(recommend_for(user, 20)))  # no rebuild
    assert liked <= page and world["shops"][0].pk not in page


@pytest.mark.django_db
@pytest.mark.parametrize("half_life", [10.0, 30.0])
def test_half_life_days_is_how_fast_an_interaction_fades(world, settings, half_life):
    """Trained in and served with: an interaction ``half_life`` days old weighs half one of
    today (the data is too small for the holdout to choose another value)."""
    import numpy as np

    from xo_recommender.engine.data import Events

    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "HALF_LIFE_DAYS": half_life}
    rebuild()
    _, model = artifacts.active_model()
    assert model.params.half_life_days == half_life
    cafes = [world["cafes"][0].pk, world["cafes"][1].pk]
    now = model.trained_at
    history = Events(np.array([1, 1]), np.array(cafes), np.array([0, 0]), ("like",),
                     weights=np.ones(2), counts=np.ones(2),
                     last_seen=np.array([now, now - half_life * 86_400.0]))
    row = model.history_row(history, now).toarray().ravel()
    fresh, old = row[model.items.to_index(np.array(cafes))]
    assert old / fresh == pytest.approx(0.5, rel=1e-3)


@pytest.mark.django_db
def test_near_you_in_reasons_reaches_as_far_as_geo_scale_km(world, settings):
    rebuild()
    # home in Atlanta, 4.6 km east of every place there
    user = UserFactory(interests=[], home_latitude=ATL[0], home_longitude=ATL[1] + 0.05)

    def near_reasons():
        return [reason for r in recommend_for(user, 8) for reason in r.reasons
                if "near you" in reason or "km from" in reason]

    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "GEO_SCALE_KM": 100.0}
    assert near_reasons()
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "GEO_SCALE_KM": 4.0}
    assert near_reasons() == []


@pytest.mark.django_db
def test_fresh_after_an_interaction_without_a_rebuild(world):
    rebuild()
    user = UserFactory(interests=[])
    record_interaction(user, world["shops"][0], "save")
    before = ids(recommend_for(user, 2))
    assert set(before) <= {s.pk for s in world["shops"]}
    record_interaction(user, world["cafes"][0], "like")
    record_interaction(user, world["cafes"][1], "like")
    after = recommend_for(user, 2)
    assert world["cafes"][2].pk in ids(after)  # the cafes' neighbour now leads
    assert ModelVersion.objects.count() == 1  # same model version served both


@pytest.mark.django_db
def test_cold_start_user_gets_interest_and_location_results(world):
    rebuild()
    reader = UserFactory(interests=["books"], home_latitude=ATL[0], home_longitude=ATL[1])
    results = recommend_for(reader, 4)
    assert set(ids(results)) == {s.pk for s in world["shops"]}
    assert all(r.reasons for r in results)
    assert any("Matches your interest in Books" in r.reasons for r in results)
    assert all(r.distance_km is not None and r.distance_km < 10 for r in results)


@pytest.mark.django_db
def test_user_with_nothing_gets_popular_businesses(world):
    rebuild()
    nobody = UserFactory(interests=[], home_latitude=None, home_longitude=None)
    results = recommend_for(nobody, 3)
    # most engaged: the three liked cafes and three saved shops; likes and saves both
    # count, host popularity breaks it towards the cafes
    assert len(results) == 3
    assert set(ids(results)) <= {b.pk for b in world["cafes"][:3] + world["shops"][:3]}
    assert all(r.distance_km is None for r in results)


@pytest.mark.django_db
@pytest.mark.parametrize("fixed_blend", [False, True], ids=["learned", "fixed blend"])
def test_a_user_without_a_home_is_ranked_from_where_they_go(world, client, settings,
                                                           fixed_blend):
    if fixed_blend:  # BLEND_WEIGHTS set: the same point, weighed by its proximity term
        settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER,
                                   "BLEND_WEIGHTS": {"proximity": 1.0}}
    nyc_books = BusinessFactory(name="NYC Books", categories=[world["shops"][0].categories
                                                              .first()],
                                latitude=NYC[0] + 0.01, longitude=NYC[1], popularity_score=1)
    nyc_spots = [BusinessFactory(name=f"NYC {i}", latitude=NYC[0] - 0.01,
                                 longitude=NYC[1] + 0.01 * i) for i in range(2)]
    rebuild()
    user = UserFactory(interests=[], home_latitude=None, home_longitude=None)
    record_interaction(user, world["far_cafe"], "like")  # their one outing: New York
    new_york = {nyc_books.pk, *(spot.pk for spot in nyc_spots)}
    results = recommend_for(user, 4)
    # every Atlanta place is out of reach of where they go: New York's own come first
    assert set(ids(results)[:3]) == new_york
    assert all(r.distance_km is None for r in results)  # no home given: none shown
    client.force_login(user)
    body = client.get(f"/api/recommend/{user.pk}/", {"max_results": 1}).json()
    assert body["recommendations"][0]["business_id"] in new_york
    assert body["recommendations"][0]["distance_km"] is None
    # a home in Atlanta and one outing in New York: a trip, Atlanta ranks first
    mover = UserFactory(interests=[], home_latitude=ATL[0], home_longitude=ATL[1])
    record_interaction(mover, world["far_cafe"], "like")
    assert ids(recommend_for(mover, 4))[0] not in new_york
    # every outing in New York: the home is stale, New York ranks first
    for spot in nyc_spots:
        record_interaction(mover, spot, "like")
    assert ids(recommend_for(mover, 4))[0] == nyc_books.pk


@pytest.mark.django_db
def test_filters_category_radius_exclude_and_inactive(world):
    rebuild()
    user = UserFactory(interests=["coffee"], home_latitude=ATL[0], home_longitude=ATL[1])
    only_books = recommend_for(user, 10, category="books")
    assert set(ids(only_books)) == {s.pk for s in world["shops"]}

    near_nyc = recommend_for(user, 10, near=NYC, radius_km=50)
    assert ids(near_nyc) == [world["far_cafe"].pk]

    skip = world["cafes"][3]
    assert skip.pk not in ids(recommend_for(user, 10, exclude=[skip, world["cafes"][2].pk]))

    world["cafes"][1].is_active = False
    world["cafes"][1].save()
    assert world["cafes"][1].pk not in ids(recommend_for(user, 10))  # before any rebuild


@pytest.mark.django_db
def test_negative_type_hides_a_business(world):
    weights = {"view": 1.0, "like": 3.0, "save": 4.0, "purchase": 5.0, "share": 4.0,
               "hide": -1.0}
    with override_settings(XO_RECOMMENDER={**_configured(), "INTERACTION_WEIGHTS": weights}):
        rebuild()
        user = world["coffee_people"][0]
        target = world["cafes"][3]
        assert target.pk in ids(recommend_for(user, 10))
        record_interaction(user, target, "hide")
        assert target.pk not in ids(recommend_for(user, 10))


@pytest.mark.django_db
def test_offset_pages_do_not_overlap(world):
    rebuild()
    user = world["book_people"][0]
    first, second = recommend_for(user, 2), recommend_for(user, 2, offset=2)
    assert len(first) == 2 and len(second) == 2
    assert not set(ids(first)) & set(ids(second))


@pytest.mark.django_db
def test_diversify_mixes_categories(world):
    rebuild()
    user = UserFactory(interests=["coffee"], home_latitude=ATL[0], home_longitude=ATL[1])

    def categories(results):
        return {r.business.categories.get().slug for r in results}

    assert categories(recommend_for(user, 2, diversify=False)) == {"coffee"}
    with override_settings(XO_RECOMMENDER={**_configured(), "DIVERSITY_LAMBDA": 0.3}):
        assert categories(recommend_for(user, 2, diversify=True)) == {"coffee", "books"}
    with override_settings(XO_RECOMMENDER={**_configured(), "DIVERSITY_LAMBDA": 1.0}):
        assert categories(recommend_for(user, 2, diversify=True)) == {"coffee"}


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "field"), [
    ({"limit": 0}, "limit"), ({"limit": -1}, "limit"), ({"limit": 101}, "limit"),
    ({"limit": "10"}, "limit"), ({"offset": -1}, "offset"), ({"near": (91, 0)}, "near"),
    ({"near": (0, 181)}, "near"), ({"near": "here"}, "near"),
    ({"near": (float("nan"), 0)}, "near"), ({"near": ATL, "radius_km": -1}, "radius_km"),
    ({"near": ATL, "radius_km": float("inf")}, "radius_km"),
])
def test_bad_arguments_are_value_errors_naming_the_argument(world, kwargs, field):
    rebuild()
    with pytest.raises(InvalidArgument) as err:
        recommend_for(world["coffee_people"][0], **kwargs)
    assert isinstance(err.value, ValueError) and err.value.field == field


@pytest.mark.django_db
def test_fixed_blend_weights_set_after_a_learned_rebuild_rank_at_once(world):
    """BLEND_WEIGHTS is read per request: set after the rebuild, it replaces the learned
    ranking without another rebuild. A user in New York: the ranking as rebuilt puts the
    one café there first; fixed weights of popularity alone rank it behind every place
    people engaged with."""
    rebuild()
    user = UserFactory(interests=[], home_latitude=NYC[0], home_longitude=NYC[1])
    far = world["far_cafe"].pk
    assert ids(recommend_for(user, 9, diversify=False))[0] == far
    with override_settings(XO_RECOMMENDER={**_configured(), "BLEND_WEIGHTS": {"prior": 1.0}}):
        fixed = ids(recommend_for(user, 9, diversify=False))
    engaged = {b.pk for b in world["cafes"][:3] + world["shops"][:3]}
    assert set(fixed[:6]) == engaged and far in fixed[6:]  # behind everything people chose


@pytest.mark.django_db
def test_unknown_and_inactive_users_are_clear_errors(world):
    rebuild()
    with pytest.raises(UnknownUser):
        recommend_for(10**9)
    gone = UserFactory(is_active=False)
    with pytest.raises(InactiveUser):
        recommend_for(gone)


@pytest.mark.django_db
def test_a_page_costs_a_fixed_number_of_queries(world, django_assert_num_queries):
    rebuild()
    user = world["coffee_people"][0]
    recommend_for(user, 3)  # loads the model into this process
    # the user's row with their interactions (one query; the active version is the
    # cache's), the page's rows in the view (active now?) and the host's instances
    with django_assert_num_queries(3):
        results = recommend_for(user, 10)
    with django_assert_num_queries(0):
        [r.business.name for r in results]
    # the same call again: the ranking comes from the cache, only the instances are read
    # (the page's active flags were read with the ranking, and are remembered)
    with django_assert_num_queries(1):
        again = recommend_for(user, 10)
    assert ids(again) == ids(results)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_miss_is_three_round_trips(world, django_assert_num_queries):
    """As in production (no test transaction): the bounded history read is one message
    (BEGIN; SET LOCAL statement_timeout; the read; COMMIT), not four round trips."""
    rebuild()
    user = world["coffee_people"][0]
    recommend_for(user, 3)
    with django_assert_num_queries(3) as captured:
        recommend_for(user, 10)
    first = captured.captured_queries[0]["sql"]
    if connections["default"].vendor == "postgresql":  # elsewhere there is no timeout
        assert first.startswith("BEGIN; SET LOCAL statement_timeout = ")
        assert first.endswith("COMMIT")
    assert not connections["default"].in_atomic_block


@pytest.mark.django_db
def test_rebuild_switches_versions_and_prunes(world):
    with override_settings(XO_RECOMMENDER={**_configured(), "KEEP_VERSIONS": 2}):
        first = rebuild()
        assert ModelVersion.objects.get(is_active=True) == first
        assert first.n_interactions == 36 and first.n_businesses == 9
        for _ in range(3):
            latest = rebuild()
        assert ModelVersion.objects.get(is_active=True) == latest
        assert ModelVersion.objects.count() == 2


@pytest.mark.django_db
def test_failed_rebuild_keeps_the_previous_version_serving(world, monkeypatch):
    good = rebuild()
    before = ids(recommend_for(world["coffee_people"][0], 3))

    def broken(*args, **kwargs):
        raise MemoryError("fault injected")

    monkeypatch.setattr("xo_recommender.engine.model.Recommender.fit", broken)
    with pytest.raises(RebuildFailed, match="fault injected"):
        rebuild()
    failed = ModelVersion.objects.exclude(pk=good.pk).get()
    assert failed.status == "failed" and "fault injected" in failed.error
    assert ModelVersion.objects.get(is_active=True) == good
    assert ids(recommend_for(world["coffee_people"][0], 3)) == before


@pytest.mark.django_db(transaction=True)
def test_readers_during_a_rebuild_see_the_old_or_the_new_version(world):
    rebuild()
    old = set(ModelVersion.objects.values_list("pk", flat=True))
    seen, errors, stop = [], [], threading.Event()

    def reader():
        try:
            user = world["coffee_people"][0].pk
            while not stop.is_set():
                recommend_for(user, 3)
                seen.append(artifacts.active_model()[0])
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    t = threading.Thread(target=reader)
    t.start()
    try:
        new = rebuild()
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert set(seen) <= old | {new.pk}
    assert artifacts.active_model()[0] == new.pk


@pytest.mark.django_db
def test_rebuild_command_prints_a_summary_and_fails_clearly(world, monkeypatch, capsys):
    call_command("rebuild_recommendations")
    out = capsys.readouterr().out
    assert "Reading interactions" in out
    assert "is live: 12 users with interactions, 9 businesses, 36 interactions" in out
    assert "peak memory" in out

    monkeypatch.setattr("xo_recommender.engine.model.Recommender.fit",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(CommandError, match="disk full"):
        call_command("rebuild_recommendations")


@pytest.mark.django_db
def test_rebuild_command_async_runs_inline_without_a_broker(world, capsys):
    call_command("rebuild_recommendations", "--async")
    assert "rebuilt inline" in capsys.readouterr().out
    assert ModelVersion.objects.filter(is_active=True, status="ready").exists()


def _configured():
    from django.conf import settings

    return dict(settings.XO_RECOMMENDER)
