"""Per-user features the learned ranking weighs: what each says about one history."""

import numpy as np
import pytest
import scipy.sparse as sp

from xo_recommender.engine import features


def _categories(rows: list[list[int]], n_categories: int) -> sp.csr_matrix:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.concatenate([np.asarray(r, np.int64) for r in rows])
    return sp.csr_matrix((np.ones(indices.size, np.float32), indices, indptr),
                         shape=(len(rows), n_categories))


def _history(items: list[int], n_items: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(items), np.float32), ([0] * len(items), items)),
                         shape=(1, n_items))


# 40 businesses: categories 0 (stated), 1 and 2 common, 3 rare; 10 of each of 0-2, 3 of 3,
# and 7 more in category 2 so that it is the commonest.
CATS = _categories([[0]] * 10 + [[1]] * 10 + [[2]] * 17 + [[3]] * 3, 4)
BASE = np.asarray(CATS.sum(axis=0), np.float64).ravel() / CATS.shape[0]
STATED = np.array([0])


def test_repeated_visits_to_an_unstated_category_read_as_a_taste():
    # mostly the stated category, then three of the three rare ones, one common stray
    history = _history([0, 1, 2, 3, 4, 37, 38, 39, 20], CATS.shape[0])
    taste = features.unstated_taste(CATS, history, BASE, STATED)
    assert taste[37] > 0.5  # category 3: 3 of 4 unexplained visits, rare by chance
    assert taste[20] < 0.2  # category 2: one visit, as chance would have it
    assert taste[0] == 0.0  # stated: already explained by the user's interests
    assert np.all((taste >= 0) & (taste <= 1))


def test_no_unexplained_visits_means_no_unstated_taste():
    history = _history([0, 1, 2, 3], CATS.shape[0])
    assert not features.unstated_taste(CATS, history, BASE, STATED).any()
    assert not features.unstated_taste(CATS, _history([], CATS.shape[0]), BASE, STATED).any()


def test_the_same_visits_weigh_more_for_a_user_whom_tastes_draw_strongly():
    # user A's visits are nearly all in their stated category (tastes drive them);
    # user B's are spread as chance would have them: their two rare visits mean less.
    strong = _history([0, 1, 2, 3, 4, 5, 6, 7, 37, 38], CATS.shape[0])
    weak = _history([0, 10, 11, 20, 21, 22, 23, 24, 37, 38], CATS.shape[0])
    a = features.unstated_taste(CATS, strong, BASE, STATED)[37]
    b = features.unstated_taste(CATS, weak, BASE, STATED)[37]
    assert a > b


def test_usual_nearness_is_measured_in_the_users_own_distance():
    distances = np.array([0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0], np.float32)
    homebody = features.usual_nearness(distances, _history([0, 1, 2], 7))  # median 1 km
    traveller = features.usual_nearness(distances, _history([3, 4, 5], 7))  # median 10 km
    assert homebody[0] == traveller[0] == 1.0
    assert np.all(np.diff(homebody) <= 0) and np.all(np.diff(traveller) <= 0)
    assert homebody[4] == 0.0 and traveller[4] > 0.8  # 10 km: far for one, usual for other
    assert not features.usual_nearness(distances, _history([], 7)).any()


def test_the_usual_distance_median_is_numpys():
    """``usual_distance`` takes the median without ``np.median``: the same value and
    type for odd and even counts, float32 and float64."""
    rng = np.random.default_rng(4)
    for trial in range(400):
        dtype = np.float32 if trial % 2 else np.float64
        d = (rng.random(int(rng.integers(1, 30))) * 40).astype(dtype)
        if trial % 5 == 0:
            d = np.round(d)  # ties
        expected, got = np.median(d), features._median(d)
        assert got == expected and type(got) is type(expected)
        assert features.usual_distance(d) == max(float(expected), 0.25)


def test_within_reach_first_moves_only_what_is_out_of_reach():
    total = np.array([5.0, 1.0, 9.0, 2.0, 7.0], np.float32)
    d = np.array([3.0, 10.0, 2000.0, np.nan, 60.0], np.float32)
    out = features.within_reach_first(total, d)
    assert list(np.argsort(-out, kind="stable")) == [0, 3, 1, 2, 4]  # 9 and 7 after
    assert out[[0, 1, 3]].tolist() == total[[0, 1, 3]].tolist()  # within reach: as was
    assert out[2] - out[4] == total[2] - total[4]  # the far ones keep their order
    assert features.within_reach_first(total, np.full(5, 80.0, np.float32)) is total
    assert features.within_reach_first(total, np.full(5, 8.0, np.float32)) is total


def test_a_place_seen_nearby_comes_before_one_unseen_in_another_city():
    """The demo's symptom: a user who viewed most places at home was shown places
    1,000-4,000 km away first (a learned penalty on seen places, and nothing beyond
    50 km that orders a far place below a known one)."""
    from tests.engine.synthetic import site
    from xo_recommender.engine.data import Catalogue
    from xo_recommender.engine.model import EngineParams, Query, Recommender

    catalogue, events, users = site("distance", n_users=60, n_items=20, per_user=6)
    away = Catalogue(  # the same places again, 1,500 km east
        ids=catalogue.ids + 1000, names=[f"{n} (away)" for n in catalogue.names],
        categories=catalogue.categories, tags=catalogue.tags,
        latitudes=catalogue.latitudes, longitudes=catalogue.longitudes + 15.0,
        popularity=catalogue.popularity, ratings=catalogue.ratings, active=catalogue.active)
    both = Catalogue(*(np.concatenate([getattr(catalogue, f), getattr(away, f)])
                       if isinstance(getattr(catalogue, f), np.ndarray)
                       else list(getattr(catalogue, f)) + list(getattr(away, f))
                       for f in ("ids", "names", "categories", "tags", "latitudes",
                                 "longitudes", "popularity", "ratings", "active")))
    weights = {"nearness": 5.0, "interest_category": 1.0, "seen": -10.0}
    model = Recommender.fit(both, events, EngineParams(ranking={"history": weights,
                                                               "cold": weights}))
    user = 1
    home = (float(users.latitudes[0]), float(users.longitudes[0]))
    history = events.select(events.user_ids == user)
    page = model.recommend(Query(history=history, location=home, limit=20))
    distance = [r.distance_km for r in page]
    assert max(distance[:20]) < 50  # all 20 places at home first, seen ones included
    assert any(r.item_id in set(history.item_ids.tolist()) for r in page)
    further = model.recommend(Query(history=history, location=home, limit=5, offset=20))
    assert min(r.distance_km for r in further) > 1000  # then the far city, in order


def test_reach_rate_knows_what_was_on_offer():
    """The same 5 km choices mean a short reach for a user with places all around them
    and a long one for a user on the edge of town, where nothing is nearer."""
    rng = np.random.default_rng(3)
    around = np.concatenate([rng.uniform(0.2, 2.0, 200), [5.0, 5.0, 5.0]]).astype(np.float32)
    edge = np.concatenate([rng.uniform(4.5, 8.0, 200), [5.0, 5.0, 5.0]]).astype(np.float32)
    went = np.array([200, 201, 202])
    central = features.reach_rate(around, around[went])
    remote = features.reach_rate(edge, edge[went])
    assert remote > 0 and central > 0
    assert central < remote  # going 5 km past 200 closer places: a long reach
    near_choices = features.reach_rate(around, around[:3])
    assert near_choices > central  # staying close: each km costs more
    assert features.reach_rate(around, np.array([np.inf], np.float32)) is None
    closed = np.arange(200)  # the closer places closed: 5 km was as near as it gets
    assert features.reach_rate(around, around[went], closed) > central


def test_personal_nearness_falls_in_the_users_own_unit_and_only_from_the_history():
    distances = np.array([0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, np.inf], np.float32)
    homebody = features.personal_nearness(distances, features.reach_rate(
        distances, distances[[0, 1, 2]]))
    traveller = features.personal_nearness(distances, features.reach_rate(
        distances, distances[[3, 4, 5]]))
    assert homebody[0] == traveller[0] == 1.0
    assert np.all(np.diff(homebody) <= 0) and np.all(np.diff(traveller) <= 0)
    assert homebody[4] < traveller[4]
    assert homebody[-1] == traveller[-1] == 0.0  # an unknown distance is not near
    assert homebody.dtype == np.float32
    assert not features.personal_nearness(distances, None).any()


def test_any_taste_is_one_where_a_stated_interest_matches_else_the_unstated_chance():
    """A place matching a named taste matches for sure; elsewhere the chance is that of
    the unstated one; a place in both counts once (not the sum of the two)."""
    of_item = np.array([0, 1, 2, 2])
    unstated = features.PerSet(np.array([0.0, 0.7, 0.4], np.float32), of_item)
    stated = features.PerSet(np.array([1.0, 0.0, 1.0], np.float32), of_item)
    assert features.any_taste(unstated, stated).dense().tolist() == \
        [1.0, pytest.approx(0.7), 1.0, 1.0]
    assert features.any_taste(unstated, None) is unstated  # no interests named


def test_any_tastes_share_of_a_score_is_told_as_the_interest_or_the_habit_it_came_from():
    values = {"any_taste": np.array([1.0, 0.6, 0.0], np.float32),
              "interest_category": np.array([1.0, 0.0, 0.0], np.float32),
              "nearness": np.array([0.5, 0.5, 0.5], np.float32)}
    groups, out = features.contributions(values, {"any_taste": 2.0, "nearness": 1.0})
    share = {g: out[:, groups.index(g)].tolist() for g in groups}
    assert share["interest"] == [2.0, 0.0, 0.0]  # a named interest: "matches your …"
    assert share["category"] == [0.0, pytest.approx(1.2), 0.0]  # read from the history
    assert share["proximity"] == [0.5, 0.5, 0.5]
    no_interests = {k: v for k, v in values.items() if k != "interest_category"}
    groups, out = features.contributions(no_interests, {"any_taste": 2.0})
    assert groups == ("category",) and out[:, 0].tolist() == [2.0, pytest.approx(1.2), 0.0]
