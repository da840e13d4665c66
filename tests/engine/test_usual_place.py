"""A user who never gave a home is ranked from where they usually go: the centre of their
history's densest places (``ItemLocations.usual_point``), in serving and in the
self-evaluation alike, with nearness said without a made-up number."""

from dataclasses import replace

import numpy as np
import pytest

from tests.engine.synthetic import site
from xo_recommender.engine import features, geo
from xo_recommender.engine.data import Catalogue, Events
from xo_recommender.engine.holdout import temporal_split
from xo_recommender.engine.model import EngineParams, Query, Recommendation, Recommender
from xo_recommender.engine.newcomers import merge
from xo_recommender.engine.selfeval import Evaluator, learn_ranking

KM_LAT = 1 / 111.0  # degrees of latitude per km


def places(points_km, lat0=45.0, lon0=10.0):
    """ItemLocations of points given in km north/east of (lat0, lon0)."""
    xy = np.asarray(points_km, float)
    lats = lat0 + xy[:, 1] * KM_LAT
    lons = lon0 + xy[:, 0] * KM_LAT / np.cos(np.radians(lat0))
    return geo.ItemLocations(lats, lons), lats, lons


def test_the_usual_point_is_the_centre_of_the_densest_places_not_of_all():
    # five places within 2 km of (1, 1) km, one 500 km away
    locations, lats, lons = places([(0, 0), (2, 0), (0, 2), (2, 2), (1, 1), (500, 0)])
    lat, lon = locations.usual_point(np.arange(6))
    assert geo.haversine_km(lat, lon, np.array([lats[4]]), np.array([lons[4]]))[0] < 0.05
    # weight decides which group is the centre; the far trip alone when it outweighs
    lat, lon = locations.usual_point(np.arange(6), np.array([1, 1, 1, 1, 1, 6.0]))
    assert geo.haversine_km(lat, lon, np.array([lats[5]]), np.array([lons[5]]))[0] < 0.05
    lat, lon = locations.usual_point(np.arange(6), np.array([1, 1, 1, 1, 1, 4.0]))
    assert geo.haversine_km(lat, lon, np.array([lats[4]]), np.array([lons[4]]))[0] < 0.05


def test_the_usual_point_knows_only_located_places_and_the_antimeridian():
    locations = geo.ItemLocations(np.array([np.nan, 10.0, 10.0]),
                                  np.array([np.nan, 179.99, -179.99]))
    assert locations.usual_point(np.array([0])) is None
    assert locations.usual_point(np.array([1, 2]), np.array([0.0, 0.0])) is None
    lat, lon = locations.usual_point(np.array([0, 1, 2]))
    assert lat == pytest.approx(10.0, abs=1e-3)
    assert abs(lon) > 179.9  # across the antimeridian, not half-way round at 0


def two_towns():
    """Two towns 300 km apart, 40 places each; a site where distance decides."""
    rng = np.random.default_rng(3)
    xy = np.vstack([rng.uniform(0, 10, (40, 2)), rng.uniform(0, 10, (40, 2)) + [300, 0]])
    _, lats, lons = places(xy)
    n = len(xy)
    catalogue = Catalogue(
        ids=np.arange(1, n + 1), names=[f"place {i}" for i in range(1, n + 1)],
        categories=[["cafe"]] * n, tags=[[] for _ in range(n)], latitudes=lats,
        longitudes=lons, popularity=np.zeros(n), ratings=np.full(n, np.nan),
        active=np.ones(n, bool))
    return catalogue, xy


def test_a_user_without_a_home_is_ranked_from_where_they_go():
    catalogue, xy = two_towns()
    # one user went to three places in the south-west of the second town (within 10 km
    # of each other, at one time: each counts the same)
    visits = np.flatnonzero((xy[:, 0] > 300) & (xy[:, 0] < 305) & (xy[:, 1] < 5))[:3]
    assert len(visits) == 3
    t = np.full(3, 1.2e9)
    history = Events(user_ids=np.ones(3, np.int64), item_ids=visits + 1,
                     type_codes=np.zeros(3, np.int64), types=("view",), weights=np.ones(3),
                     counts=np.ones(3), last_seen=t, first_seen=t)
    weights = {"near_3km": 1.0, "seen": -5.0}
    model = Recommender.fit(catalogue, history, EngineParams(
        ranking={"history": weights, "cold": weights}))
    page = model.recommend(Query(history=history, limit=5, now=1.3e9))
    centre = xy[visits].mean(axis=0)
    distance = np.hypot(*(xy - centre).T)
    order = [i for i in np.argsort(distance) if i not in set(visits)]
    assert [r.item_id - 1 for r in page] == order[:5]
    assert all(r.distance_km is None for r in page)  # no point the user gave: none shown
    assert all(r.usual_km is not None and r.reach_km == r.usual_km for r in page)
    assert str(page[0].reasons[0]) == "Near places you often go"
    assert page[0].reasons[0].code == "usual_area"
    # a home in the same town wins over the usual place, and its distance is shown
    east = int(np.argmax(xy[:, 0]))  # the far east of the second town, ~10 km away
    home = (float(catalogue.latitudes[east]), float(catalogue.longitudes[east]))
    page = model.recommend(Query(history=history, location=home, limit=5, now=1.3e9))
    from_home = np.hypot(*(xy - xy[east]).T)
    assert [r.item_id - 1 for r in page] == [
        i for i in np.argsort(from_home) if i not in set(visits)][:5]
    assert all(r.distance_km is not None and r.usual_km is None for r in page)
    assert page[0].reasons[0].code == "distance"
    # a home in another town than every place they go to is stale: where they go ranks
    stale = (float(catalogue.latitudes[0]), float(catalogue.longitudes[0]))
    page = model.recommend(Query(history=history, location=stale, limit=5, now=1.3e9))
    assert [r.item_id - 1 for r in page] == order[:5]
    assert all(r.distance_km is None for r in page)
    assert page[0].reasons[0].code == "usual_area"


def visits(places, types, days_ago, now=1.3e9):
    t = now - np.asarray(days_ago, float) * 86_400
    n = len(places)
    return Events(user_ids=np.ones(n, np.int64), item_ids=np.asarray(places) + 1,
                  type_codes=np.asarray(types, np.int64), types=("view", "save"),
                  weights=np.ones(n), counts=np.ones(n), last_seen=t, first_seen=t)


def test_places_saved_for_a_trip_do_not_move_where_the_user_usually_goes():
    catalogue, xy = two_towns()
    home_town = np.flatnonzero(xy[:, 0] < 100)[:6]
    trip = np.flatnonzero(xy[:, 0] > 100)[:2]
    # six views at home over the last month; two saves in the other town yesterday
    history = visits([*home_town, *trip], [0] * 6 + [1] * 2, [30, 25, 20, 15, 10, 5, 1, 1])
    weights = {"near_3km": 1.0, "seen": -5.0}
    model = Recommender.fit(catalogue, history, EngineParams(
        type_weights={"view": 1.0, "save": 4.0}, ranking={"history": weights,
                                                          "cold": weights}))
    page = model.recommend(Query(history=history, limit=10, now=1.3e9))
    assert all(r.item_id <= 40 for r in page)  # the home town's places, not the trip's
    # a life split evenly between the two towns has no one usual place
    split = visits([*home_town[:3], *trip, np.flatnonzero(xy[:, 0] > 100)[2]], [0] * 6,
                   [5] * 6)
    assert model.ranking_point(Query(history=split, now=1.3e9)) == (None, False)


def test_newcomers_out_of_reach_of_the_usual_place_come_after_those_within():
    near = replace(_rec(1, 0.1), usual_km=2.0)
    far_but_higher = replace(_rec(2, 0.9), usual_km=400.0)
    assert [r.item_id for r in merge([near], [far_but_higher], 2)] == [1, 2]


def _rec(item_id, score):
    return Recommendation(item_id, score, [], None)


def test_without_homes_the_learned_ranking_still_finds_that_distance_decides():
    catalogue, events, users = site("distance", seed=5, n_users=500)
    nowhere = replace(users, latitudes=np.full(len(users.ids), np.nan),
                      longitudes=np.full(len(users.ids), np.nan))
    learned = learn_ranking(catalogue, events, nowhere, EngineParams(), seed=1,
                            budget_seconds=20, max_users=300)
    model_ndcg = learned.holdout["model"]["history"]["ndcg@10"]
    popular_ndcg = learned.holdout["baselines"]["popular"]["history"]["ndcg@10"]
    assert learned.serving["history"] == "model"
    assert model_ndcg > 2 * popular_ndcg
    said = [n for n in learned.notes if n.endswith(
        "users with a history gave no home: they are ranked from where they usually go")]
    assert len(said) == 1
    homeless, of = said[0].split(" users with a history")[0].split(" of ")
    assert homeless == of  # nobody gave one
    near = sum(w for f, w in learned.ranking["history"].items()
               if f.startswith("near_") or f.endswith("nearness"))
    assert near > 0


def test_the_self_evaluation_ranks_a_user_without_a_home_as_served():
    catalogue, events, users = site("distance", seed=2, n_users=200)
    nowhere = replace(users, latitudes=np.full(len(users.ids), np.nan),
                      longitudes=np.full(len(users.ids), np.nan))
    outer = temporal_split(events, seed=4)
    now = float(outer.train.last_seen.max())
    weights = {"near_3km": 1.0, "nearness": 0.3, "popularity": 0.1, "seen": -5.0}
    model = Recommender.fit(catalogue, outer.train,
                            EngineParams(ranking={"history": weights, "cold": weights}),
                            now=now)
    evaluator = Evaluator(model, outer, nowhere, now)
    for user_id in sorted(outer.targets)[:20]:
        values, mask, _ = evaluator(user_id, outer.targets[user_id], False)
        distances = evaluator.distances(user_id)
        assert distances is not None  # ranked from the usual place, as served
        total = features.within_reach_first(features.score(values, weights, model.n_items),
                                            distances)
        measured = np.argsort(-np.where(mask, total, -np.inf), kind="stable")[:10]
        history = evaluator.history.of(user_id)
        served = model.recommend(Query(history=history, limit=10,
                                       now=outer.cutoffs.get(user_id, now)))
        assert [r.item_id for r in served] == model.items.to_ids(measured).tolist()
