"""MMR re-ranking by category."""

from __future__ import annotations

import numpy as np
import pytest

from xo_recommender.engine.diversity import category_matrix, mmr_rerank, pool_similarity

CATEGORIES = [
    ["Cafe"],  # 0
    ["cafe"],  # 1
    ["Cafe"],  # 2
    ["Barber"],  # 3
    ["Bookshop", "Cafe"],  # 4
    [],  # 5
]


@pytest.fixture
def features():
    return category_matrix(CATEGORIES)


def test_category_matrix_is_binary_and_case_insensitive(features):
    assert features.shape == (6, 3)
    assert set(features.data.tolist()) == {1.0}
    assert features[0].toarray().tolist() == features[1].toarray().tolist()
    assert category_matrix([["a", "A"]]).toarray().tolist() == [[1.0]]


def test_pool_similarity_cosine_and_jaccard(features):
    rows = features[[0, 3, 4, 5]]
    cos = pool_similarity(rows, "cosine")
    jac = pool_similarity(rows, "jaccard")
    assert cos[0, 1] == 0.0 and jac[0, 1] == 0.0
    assert cos[0, 2] == pytest.approx(1 / np.sqrt(2))
    assert jac[0, 2] == pytest.approx(0.5)
    assert cos[0, 0] == pytest.approx(1.0) and jac[0, 0] == pytest.approx(1.0)
    assert not cos[3].any() and not jac[3].any()  # no categories: similar to nothing


def test_diversity_puts_another_category_second(features):
    pool = np.array([0, 1, 2, 3])
    scores = np.array([1.0, 0.95, 0.9, 0.6])
    picks = mmr_rerank(pool, scores, features, k=2, lambda_=0.3)
    assert pool[picks].tolist() == [0, 3]


def test_lambda_one_keeps_relevance_order(features):
    pool = np.array([0, 1, 2, 3])
    scores = np.array([1.0, 0.95, 0.9, 0.6])
    picks = mmr_rerank(pool, scores, features, k=4, lambda_=1.0)
    assert picks.tolist() == [0, 1, 2, 3]
    assert pool[picks[1]] == 1  # same category second


def test_near_one_lambda_still_follows_relevance(features):
    pool = np.array([0, 1, 2, 3])
    scores = np.array([1.0, 0.95, 0.9, 0.6])
    picks = mmr_rerank(pool, scores, features, k=4, lambda_=0.99)
    assert picks.tolist() == [0, 1, 2, 3]


def test_every_pick_is_distinct_and_k_is_capped_by_the_pool(features):
    pool = np.array([0, 1, 2, 3, 4, 5])
    scores = np.linspace(1.0, 0.5, 6)
    picks = mmr_rerank(pool, scores, features, k=50, lambda_=0.5, similarity="jaccard")
    assert sorted(picks.tolist()) == list(range(6))
    assert picks[0] == 0


def test_mmr_on_dense_features_matches_sparse(features):
    pool = np.array([4, 0, 3, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    sparse = mmr_rerank(pool, scores, features, k=4, lambda_=0.4)
    dense = mmr_rerank(pool, scores, features.toarray(), k=4, lambda_=0.4)
    assert sparse.tolist() == dense.tolist()


def test_bad_parameters_raise(features):
    with pytest.raises(ValueError):
        mmr_rerank([0], [1.0], features, k=1, lambda_=1.5)
    with pytest.raises(ValueError):
        mmr_rerank([0, 1], [1.0], features, k=1)
    with pytest.raises(ValueError):
        pool_similarity(features, "euclid")
    assert mmr_rerank([], [], features, k=3).size == 0
