"""The composed Recommender on tiny catalogues: serving, exclusions, artifacts, reasons."""

import numpy as np
import pytest

from xo_recommender.engine.data import Catalogue, Events
from xo_recommender.engine.model import EngineParams, Query, Recommender

TYPES = ("view", "like", "save", "purchase", "share", "hide")
WEIGHTS = {"view": 1.0, "like": 3.0, "save": 4.0, "purchase": 5.0, "share": 4.0, "hide": -1.0}


def events(rows):
    """rows: (user, item, type)."""
    u, i, t = zip(*rows, strict=True)
    n = len(rows)
    return Events(np.array(u), np.array(i), np.array([TYPES.index(x) for x in t]), TYPES,
                  weights=np.ones(n), counts=np.ones(n), last_seen=np.full(n, 1.7e9))


def catalogue(n, categories=None):
    return Catalogue(ids=np.arange(100, 100 + n), names=[f"B{k}" for k in range(n)],
                     categories=categories or [["Coffee"]] * n,
                     latitudes=np.full(n, 33.75), longitudes=np.full(n, -84.39))


@pytest.fixture
def pairs_model():
    """Items come in pairs: (100, 101) and (102, 103) are always chosen together."""
    rows = []
    for user in range(6):
        rows += [(user, 100, "like"), (user, 101, "like"), (user + 10, 102, "like"),
                 (user + 10, 103, "like")]
    return Recommender.fit(catalogue(5), events(rows), EngineParams(type_weights=WEIGHTS))


def test_history_drives_the_neighbour_and_seen_items_are_excluded(pairs_model):
    history = events([(99, 100, "like")])
    results = pairs_model.recommend(Query(history=history, limit=2))
    assert results[0].item_id == 101
    assert 100 not in [r.item_id for r in results]  # liked: excluded by default
    assert results[0].reasons[0] == "Because you liked B0"


def test_reasons_name_different_history_items_down_the_page(pairs_model):
    history = events([(99, 100, "like"), (99, 102, "like")])
    results = pairs_model.recommend(Query(history=history, limit=2))
    assert {r.item_id for r in results} == {101, 103}
    named = {r.reasons[0] for r in results}
    assert named == {"Because you liked B0", "Because you liked B2"}


def test_reason_variety_prefers_an_unnamed_item_that_explains_enough(pairs_model, monkeypatch):
    import scipy.sparse as sp

    # history items 0 and 1; results 3 and 4. Item 0 explains both (1.0 each); item 1
    # explains result 4 at 0.6 of that.
    s = sp.csr_matrix((np.array([1.0, 1.0, 0.6], dtype=np.float32),
                       (np.array([0, 0, 1]), np.array([3, 4, 4]))), shape=(5, 5))
    monkeypatch.setattr(pairs_model.collaborative, "similarity_", s)
    row = sp.csr_matrix((np.ones(2, dtype=np.float32), (np.zeros(2), [0, 1])), shape=(1, 5))
    results = np.array([3, 4])
    assert pairs_model._collaborative_sources(row, results).tolist() == [0, 1]
    monkeypatch.setattr(Recommender, "REASON_VARIETY", 1.0)  # only ties may vary
    assert pairs_model._collaborative_sources(row, results).tolist() == [0, 0]
    monkeypatch.setattr(Recommender, "REASON_VARIETY", 0.7)  # 0.6 is not enough
    assert pairs_model._collaborative_sources(row, results).tolist() == [0, 0]


def test_a_view_does_not_hide_but_a_negative_type_does(pairs_model):
    viewed = pairs_model.recommend(Query(history=events([(99, 101, "view")]), limit=5))
    assert 101 in [r.item_id for r in viewed]
    hidden = pairs_model.recommend(Query(history=events([(99, 101, "hide")]), limit=5))
    assert 101 not in [r.item_id for r in hidden]


def test_artifact_round_trip_serves_the_same_page(pairs_model):
    again = Recommender.from_bytes(pairs_model.to_bytes())
    query = Query(history=events([(99, 100, "like")]), interests=["coffee"],
                  location=(33.7, -84.4), limit=3)
    assert pairs_model.recommend(query) == again.recommend(query)


def test_category_filter_and_radius_need_a_point():
    model = Recommender.fit(catalogue(3, [["Coffee"], ["Books"], ["Books", "Coffee"]]),
                            events([(1, 100, "view")]))
    assert {r.item_id for r in model.recommend(Query(category="books", limit=5))} == {101, 102}
    assert model.recommend(Query(category="nothing", limit=5)) == []
    with pytest.raises(ValueError, match="radius_km needs a point"):
        model.recommend(Query(radius_km=5))
    with pytest.raises(ValueError):
        model.recommend(Query(limit=0))


def test_the_history_by_results_gather_is_the_sparse_slice():
    """``_history_by_results`` gathers what ``S[hist][:, results]`` holds, value for value."""
    from tests.engine.synthetic import site

    catalogue, evs, _ = site("interest", n_users=80, n_items=60, seed=3)
    model = Recommender.fit(catalogue, evs, EngineParams())
    rng = np.random.default_rng(0)
    s = model.collaborative.similarity_
    for _ in range(20):
        hist = np.sort(rng.choice(model.n_items, int(rng.integers(1, 12)), replace=False))
        results = rng.choice(model.n_items, int(rng.integers(1, 15)), replace=False)
        expected = s[hist][:, results].toarray()
        got = model._history_by_results(hist, results)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("absurd", [1e39, np.inf, np.nan])
def test_one_absurd_stored_weight_does_not_spoil_the_model(absurd):
    """A weight beyond float32 (stored by raw SQL, or by a release that let it through)
    once made every similarity NaN: it counts as the largest allowed weight (NaN as 0)."""
    from tests.engine.synthetic import site

    catalogue, events, _ = site("interest", n_users=60, n_items=40, per_user=6)
    weights = np.ones(len(events))
    weights[0] = absurd
    spoilt = Events(events.user_ids, events.item_ids, events.type_codes, events.types,
                    weights=weights, counts=events.counts, last_seen=events.last_seen,
                    first_seen=events.first_seen)
    model = Recommender.fit(catalogue, spoilt, EngineParams())
    s = model.collaborative.similarity_
    assert s.nnz and np.isfinite(s.data).all()
    clean = Recommender.fit(catalogue, events, EngineParams())
    user = events.user_ids[-1]  # not the user with the absurd weight
    history = events.select(events.user_ids == user)
    assert [r.item_id for r in model.recommend(Query(history=history, limit=5))][:1] == [
        r.item_id for r in clean.recommend(Query(history=history, limit=5))][:1]


def test_an_infinite_popularity_or_a_rating_off_the_scale_is_taken_as_unknown():
    """One +inf popularity once flattened every other business's to ~0, and one rating
    of 100 lifted every unrated business above the rated ones."""
    from tests.engine.synthetic import site

    catalogue, events, _ = site("popularity", n_users=60, n_items=40, per_user=6)
    catalogue.popularity[:] = np.arange(1, 41)
    catalogue.ratings[:10] = np.linspace(3.0, 4.5, 10)
    clean = Recommender.fit(catalogue, events, EngineParams())
    catalogue.popularity[39], catalogue.ratings[9] = np.inf, 100.0
    catalogue.ratings[8] = 0.0
    odd = Recommender.fit(catalogue, events, EngineParams())
    assert np.isfinite(odd.signals["hosted"]).all()
    kept = clean.signals["hosted"][:39]
    assert np.allclose(odd.signals["hosted"][:39], kept / kept.max())  # scaled as before
    assert odd.signals["hosted"][39] == 0.0  # unknown, not the largest
    assert np.isnan(odd.ratings[8:10]).all()
    unrated = odd.signals["rating"][20]
    assert unrated < odd.signals["rating"][7]  # a 4.33 still beats "unrated"
    assert unrated <= clean.signals["rating"][20]  # not lifted (two high ones left out)


def test_weights_that_favour_nothing_this_user_has_rank_by_the_prior_not_by_id():
    """A guardrail serving "popular nearby" learned as distance alone, for a user
    without a home: every score was 0 and the page came in id order."""
    from tests.engine.synthetic import site

    catalogue, events, _ = site("popularity", n_users=60, n_items=40, per_user=6)
    catalogue.popularity[:] = np.arange(40, 0, -1)[::-1]  # the last id the most popular
    weights = {"nearness": 7.7, "seen": -10.0}
    model = Recommender.fit(catalogue, events, EngineParams(ranking={"history": weights,
                                                                     "cold": weights}))
    page = model.recommend(Query(limit=5))  # no history, no point
    by_prior = [int(model.items.ids[i]) for i in np.argsort(-model.prior, kind="stable")[:5]]
    assert [r.item_id for r in page] == by_prior
    assert [r.item_id for r in page] != [1, 2, 3, 4, 5]
