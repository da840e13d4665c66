"""The serving engine behind the offline evaluation's ``fit`` / ``score`` protocol.

``evaluation.evaluate`` trains on a user×item matrix and scores one user row at a
time. ``ServingEngine`` answers that protocol with the production ``Recommender`` (the
same blend of collaborative, content and popularity components, the same parameters),
so offline figures measure what users are served, not a stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from xo_recommender.engine.data import Catalogue, Events
from xo_recommender.engine.matrix import IdIndex
from xo_recommender.engine.model import EngineParams, Query, Recommender

#: Offline data has one kind of event (a rating is a positive) and no usable recency.
_TYPES = ("view",)


#: Share of the users whose test rows all come at or after their last training row, from
#: which a pair of files counts as split by time.
TIME_SPLIT_SHARE = 0.9


def split_order(train: Any, test: Any) -> str:
    """"time" when the test file holds each user's latest rows (at or after their last
    training row, for at least ``TIME_SPLIT_SHARE`` of the users in both), else
    "random"; also "random" when the files carry no spread of times to split by (rows
    without a finite time do not count).

    Why: the learned ranking is chosen on a holdout of the training file, and a ranking
    chosen to find each user's next places (a rebuild's question) is not the one that
    finds a random quarter of them: on three random ml-100k splits the weights learned
    on a holdout by time served and ranked the test 1.5–5 % below plain EASE.
    (``train``/``test``: ``datasets.Interactions``.)
    """
    def finite(data: Any) -> tuple[np.ndarray, np.ndarray]:
        stamps = np.asarray(data.timestamp, np.float64)
        keep = np.isfinite(stamps)
        return np.asarray(data.user_id, np.int64)[keep], stamps[keep]

    train_users, train_times = finite(train)
    test_users, test_times = finite(test)
    if not train_times.size or np.ptp(np.r_[train_times, test_times]) == 0.0:
        return "random"  # no time to split by
    index = IdIndex.from_ids(np.intersect1d(train_users, test_users))
    if not len(index):
        return "time"
    latest = np.full(len(index), -np.inf)
    earliest = np.full(len(index), np.inf)
    at = index.to_index(train_users)
    np.maximum.at(latest, at[at >= 0], train_times[at >= 0])
    at = index.to_index(test_users)
    np.minimum.at(earliest, at[at >= 0], test_times[at >= 0])
    return "time" if float(np.mean(earliest >= latest)) >= TIME_SPLIT_SHARE else "random"


class ServingEngine:
    """Adapter: ``fit(x)`` builds a ``Recommender``; ``score(row)`` blends every component.

    ``item_ids`` gives the external id of each matrix column and ``item_categories``
    their categories (e.g. RecBole genres), so content similarity takes part too.
    ``split_by``: how the learning holds out ("time", as a rebuild does, or "random";
    ``split_order`` tells which a pair of files was drawn by).
    """

    def __init__(self, params: EngineParams | None = None, *,
                 item_ids: Sequence[int] | None = None,
                 item_categories: Mapping[int, Sequence[str]] | None = None,
                 learn_from: Any = None, tuning_seconds: float = 60.0,
                 split_by: str = "time") -> None:
        base = params or EngineParams()
        self.params = replace(base, type_weights={"view": 1.0}, half_life_days=None)
        self.item_ids = None if item_ids is None else np.asarray(item_ids, dtype=np.int64)
        self.item_categories = item_categories or {}
        #: The training file's rows (``datasets.Interactions``, with times): when given,
        #: the ranking is learned on a holdout of theirs, drawn by ``split_by`` (a
        #: rebuild's is always by time).
        self.learn_from = learn_from
        self.tuning_seconds = tuning_seconds
        self.split_by = split_by
        self.evaluation = None
        self.model: Recommender | None = None

    def fit(self, x: sp.spmatrix) -> ServingEngine:
        x = sp.coo_matrix(x)
        n_items = x.shape[1]
        external = self.item_ids if self.item_ids is not None else np.arange(n_items)
        catalogue = Catalogue(
            ids=np.arange(n_items, dtype=np.int64),
            names=[str(i) for i in external],
            categories=[list(self.item_categories.get(int(i), ())) for i in external],
        )
        events = Events(user_ids=x.row.astype(np.int64), item_ids=x.col.astype(np.int64),
                        type_codes=np.zeros(x.nnz, dtype=np.int64), types=_TYPES,
                        weights=x.data.astype(np.float64))
        params = self.params
        if self.learn_from is not None:
            params = self._learn(catalogue, external).apply(params)
        self.model = Recommender.fit(catalogue, events, params)
        return self

    def _learn(self, catalogue: Catalogue, external: np.ndarray):
        from xo_recommender.engine.matrix import IdIndex
        from xo_recommender.engine.selfeval import learn_ranking

        rows = self.learn_from
        cols = IdIndex(np.asarray(external, dtype=np.int64)).to_index(rows.item_id)
        keep = cols >= 0
        n = int(keep.sum())
        # a missing time reads as 0, as the holdout reads it (no NaN reaches a decay)
        times = np.nan_to_num(np.asarray(rows.timestamp, np.float64)[keep], nan=0.0,
                              posinf=0.0, neginf=0.0)
        events = Events(user_ids=np.asarray(rows.user_id, np.int64)[keep],
                        item_ids=cols[keep].astype(np.int64),
                        type_codes=np.zeros(n, np.int64), types=_TYPES,
                        weights=np.ones(n), last_seen=times, first_seen=times)
        self.evaluation = learn_ranking(catalogue, events, None, self.params,
                                        budget_seconds=self.tuning_seconds,
                                        split_by=self.split_by)
        return self.evaluation

    def score(self, user_row: Any) -> np.ndarray:
        """Blended scores of every item for one user (seen items are not removed here)."""
        if self.model is None:
            raise RuntimeError("fit the engine first")
        row = sp.csr_matrix(user_row)
        history = Events(user_ids=np.zeros(row.nnz, np.int64),
                         item_ids=row.indices.astype(np.int64),
                         type_codes=np.zeros(row.nnz, np.int64), types=_TYPES,
                         weights=row.data.astype(np.float64))
        ranking = self.model.scores(Query(history=history))
        out = np.zeros(self.model.n_items, dtype=np.float32)
        out[ranking.indices] = ranking.scores
        return out
