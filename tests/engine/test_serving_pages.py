"""The served pages of a fixed seeded site, pinned: a change made for speed in the
serving path (features, ranking, reasons, diversity) must not change what users get.

The expected pages were produced by the serving code before the request-time work was
cut down (commit f5619dd), but for the "no home" pages: a user without a home is ranked
from where they usually go since (``Recommender.ranking_point``). Every feature of that
time is weighted, so every such feature's code runs (features added since have tests of
their own).
"""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from tests.engine.synthetic import CATEGORIES, site
from xo_recommender.engine.features import FEATURES
from xo_recommender.engine.model import EngineParams, Query, Recommender

#: The features at the reference commit, in their order then (the pin's weights).
PINNED = tuple(f for f in FEATURES
               if f not in {"unstated_taste", "any_taste", "usual_nearness",
                            "personal_nearness"})

TAGS = ("vegan", "late", "family", "wifi", "outdoor", "cash")


def served_model(*, learned: bool = True) -> tuple[Recommender, dict]:
    """The seeded site's model: the learned ranking with every pinned feature weighted,
    or (``learned=False``) the fixed blend of ``BLEND_WEIGHTS``'s defaults."""
    catalogue, events, users = site("interest", n_users=120, n_items=90, seed=11)
    rng = np.random.default_rng(5)
    n = len(catalogue)
    categories = [[c[0], CATEGORIES[int(j)]] if rng.random() < 0.5 else list(c)
                  for c, j in zip(catalogue.categories, rng.integers(0, 8, n), strict=True)]
    tags = [list(rng.choice(TAGS, int(rng.integers(0, 3)), replace=False)) for _ in range(n)]
    ratings = np.where(rng.random(n) < 0.8, rng.uniform(1, 5, n), np.nan)
    catalogue = replace(catalogue, categories=categories, tags=tags, ratings=ratings,
                        popularity=rng.integers(0, 100, n).astype(float))
    types = ("view", "like", "save")
    events = replace(events, types=types,
                     type_codes=rng.integers(0, 3, len(events)).astype(np.int64))
    weights = {f: round(float(w), 3) for f, w in
               zip(PINNED, rng.uniform(0.05, 1.0, len(PINNED)), strict=True)}
    weights["seen"] = -0.8
    params = EngineParams(type_weights={"view": 1.0, "like": 3.0, "save": 4.0},
                          ranking={"history": weights, "cold": weights} if learned else None)
    model = Recommender.fit(catalogue, events, params)
    return model, {"events": events, "users": users}


def pages(*, learned: bool = True) -> dict[str, list]:
    model, data = served_model(learned=learned)
    events, users = data["events"], data["users"]
    out = {}
    for u in (1, 7, 23, 40, 88):
        history = events.select(np.flatnonzero(events.user_ids == u))
        i = u - 1
        home = (float(users.latitudes[i]), float(users.longitudes[i]))
        base = Query(history=history, interests=users.interests[i] + ["wifi"], location=home,
                     limit=8, now=float(events.last_seen.max()))
        for name, query in (("plain", base), ("offset", replace(base, offset=5)),
                            ("diverse", replace(base, diversify=True)),
                            ("no home", replace(base, location=None)),
                            ("cold", replace(base, history=None)),
                            ("radius", replace(base, radius_km=8.0, category="books"))):
            out[f"{u} {name}"] = [(r.item_id, round(r.score, 4), [str(t) for t in r.reasons])
                                  for r in model.recommend(query)]
    return out


#: ``{case: [[business id, score to 4 places, reasons], ...]}`` from the reference run.
EXPECTED = json.loads((Path(__file__).parent / "serving_pages.json").read_text())
#: The same for the fixed blend, from the code of commit 8cabbca (before its serving
#: path was made faster), but for "7 no home": the fixed blend too ranks a user without a
#: home from where they usually go since (the other "no home" users have no such place).
EXPECTED_BLEND = json.loads((Path(__file__).parent / "serving_pages_blend.json").read_text())


def test_pages_of_the_seeded_site_are_unchanged():
    got = {case: [[i, s, r] for i, s, r in page] for case, page in pages().items()}
    assert {case: [row[0] for row in page] for case, page in got.items()} == \
        {case: [row[0] for row in page] for case, page in EXPECTED.items()}
    assert got == EXPECTED


def test_fixed_blend_pages_of_the_seeded_site_are_unchanged():
    got = {case: [[i, s, r] for i, s, r in page]
           for case, page in pages(learned=False).items()}
    assert got == EXPECTED_BLEND


def test_compact_features_score_and_explain_as_the_arrays_do():
    """The serving form of the features (per category set, sparse) gives every business
    the score the full arrays give, bit for bit, and the same contributions."""
    from xo_recommender.engine import features

    model, data = served_model()
    events, users = data["events"], data["users"]
    every = model.segment_weights(model.history_row(events))  # every feature weighted
    leading = {f: w for f, w in every.items() if f not in ("collaborative", "profile")}
    rows = np.arange(model.n_items)
    for u, weights in ((1, every), (7, leading), (23, every), (40, leading), (88, every)):
        history = events.select(np.flatnonzero(events.user_ids == u))
        row = model.history_row(history, float(events.last_seen.max()))
        home = (float(users.latitudes[u - 1]), float(users.longitudes[u - 1]))
        for point, interests in ((home, users.interests[u - 1] + ["wifi"]), (None, [])):
            kw = {"interests": interests, "point": point, "needed": weights}
            full = features.compute(model, row, **kw)
            compact = features.compute(model, row, compact=True, **kw)
            assert any(isinstance(v, features.PerSet | features.Sparse)
                       for v in compact.values())
            n = model.n_items
            assert features.score(full, weights, n).tobytes() == \
                features.score(compact, weights, n).tobytes()
            got, expected = (features.contributions(v, weights, rows) for v in (compact, full))
            assert got[0] == expected[0] and got[1].tobytes() == expected[1].tobytes()
