"""evaluate() on a split small enough to score by hand."""

import math

import numpy as np
import pytest

from xo_recommender.engine.collaborative import CollaborativeModel
from xo_recommender.engine.datasets import Interactions
from xo_recommender.engine.evaluation import MostPopular, evaluate


def interactions(pairs):
    u, i = zip(*pairs, strict=True)
    n = len(pairs)
    return Interactions(
        user_id=np.array(u, dtype=np.int64),
        item_id=np.array(i, dtype=np.int64),
        rating=np.ones(n, dtype=np.float32),
        timestamp=np.zeros(n),
    )


# Train popularity: item 10 -> 3 users, 20 -> 1, 30 -> 1.
TRAIN = interactions([(1, 10), (1, 20), (2, 10), (2, 30), (3, 10)])
# User 2 also has item 40, never seen in train: a guaranteed miss. User 3 has no test items.
TEST = interactions([(1, 30), (2, 20), (2, 40)])


def test_most_popular_by_hand():
    r = evaluate(TRAIN, TEST, k=2, model_factory=MostPopular)
    # user 1: train {10, 20} excluded -> list [30]; relevant {30}
    #   P = 1/2, R = 1/1, NDCG = 1 / 1 = 1, AP numerator = 1/1 -> map = 1/1, minK = 1/1
    # user 2: train {10, 30} excluded -> list [20]; relevant {20, 40}
    #   P = 1/2, R = 1/2, NDCG = 1 / (1 + 1/log2 3), map = 1/2, minK = 1/min(2, 2)
    assert r["users"] == 2
    assert r["k"] == 2
    assert r["precision"] == pytest.approx(0.5)
    assert r["recall"] == pytest.approx((1 + 0.5) / 2)
    assert r["ndcg"] == pytest.approx((1 + 1 / (1 + 1 / math.log2(3))) / 2)
    assert r["map"] == pytest.approx((1 + 0.5) / 2)
    assert r["map_minK"] == pytest.approx((1 + 0.5) / 2)
    assert r["hr"] == pytest.approx(1.0)
    # distinct recommended {30, 20} over 3 train items
    assert r["coverage"] == pytest.approx(2 / 3)
    assert r["fit_seconds"] >= 0


def test_keys_and_baseline_side_by_side():
    r = evaluate(TRAIN, TEST, k=2, model_factory=CollaborativeModel, baseline=MostPopular)
    for key in ("precision", "recall", "ndcg", "map", "coverage", "fit_seconds", "users", "k"):
        assert key in r
        assert key in r["baseline"]
    assert r["baseline"]["precision"] == pytest.approx(0.5)


def test_train_items_are_never_recommended():
    seen = {}

    class Spy(MostPopular):
        def score(self, user_row):
            s = super().score(user_row)
            s[user_row.indices] = 1e9  # would win if not excluded
            seen.setdefault("rows", []).append(user_row.indices.tolist())
            return s

    r = evaluate(TRAIN, TEST, k=2, model_factory=Spy)
    assert r["precision"] == pytest.approx(0.5)
    assert len(seen["rows"]) == 2


def test_test_only_user_counts_as_evaluated_with_no_history():
    test = interactions([(1, 30), (9, 10)])
    r = evaluate(TRAIN, test, k=1, model_factory=MostPopular)
    # user 1 -> [30] hit; user 9 (unknown) -> most popular [10] hit
    assert r["users"] == 2
    assert r["precision"] == pytest.approx(1.0)
