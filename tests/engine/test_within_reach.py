"""Scoring only the businesses within reach serves the pages scoring every business
serves: the same businesses, the same scores and contributions bit for bit, and reasons.

Every business within ``features.FAR_KM`` ranks before every farther one, so when the
near ones can fill the page the far ones need no score; the served path then computes
the distance features for the near ones only. Here two thirds of a seeded site lie in
another city, a few businesses have no coordinates, and every feature is weighted.
"""

from dataclasses import replace

import numpy as np
import pytest

from tests.engine.synthetic import CATEGORIES, site
from xo_recommender.engine import features
from xo_recommender.engine.features import FEATURES
from xo_recommender.engine.model import EngineParams, Query, Recommender

TAGS = ("vegan", "late", "family", "wifi", "outdoor", "cash")


@pytest.fixture(scope="module")
def world():
    catalogue, events, users = site("interest", n_users=150, n_items=240, seed=3)
    rng = np.random.default_rng(8)
    n = len(catalogue)
    far = rng.random(n) < 2 / 3
    unknown = rng.random(n) < 0.04
    lats = np.where(far, catalogue.latitudes + 9.0, catalogue.latitudes)  # ~1,000 km north
    lats = np.where(unknown, np.nan, lats)
    categories = [[c[0], CATEGORIES[int(j)]] if rng.random() < 0.5 else list(c)
                  for c, j in zip(catalogue.categories, rng.integers(0, 8, n), strict=True)]
    tags = [list(rng.choice(TAGS, int(rng.integers(0, 3)), replace=False)) for _ in range(n)]
    catalogue = replace(catalogue, latitudes=lats, categories=categories, tags=tags,
                        ratings=np.where(rng.random(n) < 0.8, rng.uniform(1, 5, n), np.nan),
                        popularity=rng.integers(0, 100, n).astype(float))
    weights = {f: round(float(w), 3) for f, w in
               zip(FEATURES, rng.uniform(0.05, 1.0, len(FEATURES)), strict=True)}
    weights["seen"] = -0.8
    model = Recommender.fit(catalogue, events, EngineParams(
        ranking={"history": weights, "cold": {f: w for f, w in weights.items()
                                              if f in features.COLD_FEATURES}}))
    return model, events, users


def _queries(events, users):
    for u in (1, 9, 30, 77, 120):
        history = events.select(np.flatnonzero(events.user_ids == u))
        home = (float(users.latitudes[u - 1]), float(users.longitudes[u - 1]))
        base = Query(history=history, interests=users.interests[u - 1] + ["wifi"],
                     location=home, limit=8, now=float(events.last_seen.max()))
        yield from (base, replace(base, offset=6), replace(base, diversify=True),
                    replace(base, history=None), replace(base, category=CATEGORIES[1]),
                    replace(base, exclude_ids=[int(i) for i in history.item_ids[:3]]),
                    replace(base, limit=3, near=(home[0] + 9.0, home[1])))


def _served(model, query, share):
    model.WITHIN_REACH_SHARE = share
    try:
        return [(r.item_id, r.score, [str(t) for t in r.reasons], r.distance_km)
                for r in model.recommend(query)]
    finally:
        del model.WITHIN_REACH_SHARE


def test_pages_scored_within_reach_are_the_pages_scored_over_all(world, monkeypatch):
    model, events, users = world
    taken = []
    score = features.score
    monkeypatch.setattr(features, "score", lambda *a, **k: taken.append(
        k.get("rows") is not None) or score(*a, **k))
    pages = 0
    for query in _queries(events, users):
        taken.clear()
        near = _served(model, query, share=1.0)
        # a diversified page re-ranks a pool deeper than this site's near businesses
        assert any(taken) != query.diversify, query
        taken.clear()
        every = _served(model, query, share=0.0)
        assert not any(taken)
        assert near == every
        pages += bool(near)
    assert pages >= 30


def test_too_few_within_reach_for_the_page_scores_every_business(world):
    """A page deeper than the businesses within reach goes on into the far ones."""
    model, events, users = world
    home = (float(users.latitudes[0]), float(users.longitudes[0]))
    query = Query(history=None, interests=[], location=home, limit=200, now=0.0)
    page = model.recommend(query)
    assert len(page) == 200
    far = [r.distance_km for r in page if r.distance_km is not None and r.distance_km > 50]
    assert far and page[-1].distance_km > 50
