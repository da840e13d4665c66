"""Offline evaluation: train a model on one split, rank for every test user, score it.

This is the engine half of ``manage.py evaluate_recommender``: it takes parsed data
(``datasets.Interactions``) and returns plain numbers, so quality is measured with the
same code that serves. The protocol is the ml-100k README's: every interaction is a
positive, train items are excluded, ties go to the lower item id, items unseen in
train count as misses.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from .collaborative import CollaborativeModel
from .datasets import Interactions
from .matrix import IdIndex, build_matrix
from .metrics import (
    catalog_coverage,
    hit_rate,
    map_at_k,
    map_min_k,
    ndcg_at_k,
    precision_at_k,
    rank_top_k,
    recall_at_k,
)

__all__ = ["MostPopular", "RecommenderModel", "evaluate"]


class RecommenderModel(Protocol):
    """What ``evaluate`` needs from a model."""

    def fit(self, x: sp.spmatrix) -> Any: ...

    def score(self, user_row: Any) -> np.ndarray: ...


class MostPopular:
    """Baseline: every user gets the items with the most train users, ties to lower id."""

    def __init__(self) -> None:
        self.popularity_: np.ndarray | None = None

    def fit(self, x: sp.spmatrix) -> MostPopular:
        self.popularity_ = np.asarray((sp.csr_matrix(x) != 0).sum(axis=0), np.float32).ravel()
        return self

    def _pop(self) -> np.ndarray:
        if self.popularity_ is None:
            raise RuntimeError("model is not fitted")
        return self.popularity_

    def score(self, user_row: Any) -> np.ndarray:
        return self._pop().copy()

    def similar_items(self, item_idx: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        pop = self._pop()
        top = rank_top_k(pop, n, exclude=[item_idx])
        return top, pop[top].astype(np.float32)

    def explain(self, user_row: Any, item_idx: int, top: int = 1) -> list[int]:
        return []

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = np.frombuffer(json.dumps({"format": "xo-popular-v1"}).encode(), np.uint8)
        np.savez(buf, meta=meta, popularity=self._pop())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> MostPopular:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            model = cls()
            model.popularity_ = z["popularity"]
        return model


def _evaluate_one(
    x: sp.csr_matrix,
    test_by_user: dict[int, set[int]],
    k: int,
    model_factory: Callable[[], RecommenderModel],
) -> dict[str, Any]:
    start = time.perf_counter()
    model = model_factory()
    model.fit(x)
    fit_seconds = time.perf_counter() - start

    n_train_items = int(np.count_nonzero(np.diff(sp.csc_matrix(x).indptr)))
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map", "map_minK", "hr"), 0.0)
    lists = []
    for u, relevant in test_by_user.items():
        row = x[u] if u >= 0 else sp.csr_matrix((1, x.shape[1]), dtype=np.float32)
        top = rank_top_k(model.score(row), k, exclude=row.indices).tolist()
        lists.append(top)
        sums["precision"] += precision_at_k(top, relevant, k)
        sums["recall"] += recall_at_k(top, relevant, k)
        sums["ndcg"] += ndcg_at_k(top, relevant, k)
        sums["map"] += map_at_k(top, relevant, k)
        sums["map_minK"] += map_min_k(top, relevant, k)
        sums["hr"] += hit_rate(top, relevant, k)
    n_users = len(test_by_user)
    result: dict[str, Any] = {key: (v / n_users if n_users else 0.0) for key, v in sums.items()}
    result["coverage"] = catalog_coverage(lists, n_train_items)
    result["fit_seconds"] = fit_seconds
    result["users"] = n_users
    result["k"] = k
    return result


def evaluate(
    train: Interactions,
    test: Interactions,
    k: int = 10,
    model_factory: Callable[[], RecommenderModel] = CollaborativeModel,
    baseline: Callable[[], RecommenderModel] | None = None,
) -> dict[str, Any]:
    """Fit ``model_factory()`` on ``train``, rank the top ``k`` for every user with test
    items, and return ``precision recall ndcg map map_minK hr coverage fit_seconds users
    k`` (means over users). With ``baseline`` (e.g. ``MostPopular``) its figures are
    added under the ``"baseline"`` key, computed on the same split.

    Every train row is a positive of weight 1; items (and users) unseen in train cannot
    be recommended (a test-only user gets an empty history) and count as misses.
    """
    users = IdIndex.from_ids(train.user_id)
    items = IdIndex.from_ids(train.item_id)
    x = build_matrix(
        users.to_index(train.user_id),
        items.to_index(train.item_id),
        shape=(len(users), len(items)),
    )
    x.data[:] = 1.0  # binary: repeated (user, item) rows are still one positive

    test_users = users.to_index(test.user_id)
    test_items = items.to_index(test.item_id)
    # Test-only users are keyed below -1 so they stay distinct; their items that are
    # unknown to train still count in |test_u| (as guaranteed misses), hence the ids.
    test_by_user: dict[int, set[int]] = {}
    for ext_u, u, ext_i, i in zip(test.user_id, test_users, test.item_id, test_items, strict=True):
        key = int(u) if u >= 0 else -2 - int(ext_u)
        test_by_user.setdefault(key, set()).add(int(i) if i >= 0 else -1 - int(ext_i))

    result = _evaluate_one(x, test_by_user, k, model_factory)
    if baseline is not None:
        result["baseline"] = _evaluate_one(x, test_by_user, k, baseline)
    return result
