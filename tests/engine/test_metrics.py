"""Metrics against values computed by hand (the arithmetic is in the comments)."""

import math

import numpy as np
import pytest

from xo_recommender.engine.metrics import (
    catalog_coverage,
    hit_rate,
    map_at_k,
    map_min_k,
    ndcg_at_k,
    precision_at_k,
    rank_top_k,
    recall_at_k,
)

# recommended [5, 3, 9, 1], relevant {3, 1, 7}: hits at ranks 2 and 4.
REC = [5, 3, 9, 1]
REL = {3, 1, 7}


def test_precision_divides_by_k():
    # 2 hits / k=4
    assert precision_at_k(REC, REL, 4) == pytest.approx(0.5)
    # only the first 2 count: 1 hit / 2
    assert precision_at_k(REC, REL, 2) == pytest.approx(0.5)
    # list shorter than k still divides by k: 2 hits / 10
    assert precision_at_k(REC, REL, 10) == pytest.approx(0.2)


def test_recall():
    # 2 hits / |REL|=3
    assert recall_at_k(REC, REL, 4) == pytest.approx(2 / 3)
    assert recall_at_k(REC, set(), 4) == 0.0


def test_ndcg():
    # DCG = 1/log2(3) + 1/log2(5); IDCG over min(3, 4)=3 ranks = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 0.5
    assert ndcg_at_k(REC, REL, 4) == pytest.approx(dcg / idcg)
    # perfect ranking -> 1
    assert ndcg_at_k([3, 1, 7], REL, 3) == pytest.approx(1.0)
    # k=1 with a miss at rank 1 -> 0
    assert ndcg_at_k(REC, REL, 1) == 0.0


def test_map_variants():
    # precision at the hits: rank 2 -> 1/2, rank 4 -> 2/4; numerator = 1.0
    # map: 1.0 / |REL| = 1/3 ; map_minK with k=4: 1.0 / min(3, 4) = 1/3
    assert map_at_k(REC, REL, 4) == pytest.approx(1 / 3)
    assert map_min_k(REC, REL, 4) == pytest.approx(1 / 3)
    # k=2: numerator 1/2 ; map = (1/2)/3 = 1/6 ; map_minK = (1/2)/min(3, 2) = 1/4
    assert map_at_k(REC, REL, 2) == pytest.approx(1 / 6)
    assert map_min_k(REC, REL, 2) == pytest.approx(1 / 4)


def test_hit_rate():
    assert hit_rate(REC, REL, 1) == 0.0
    assert hit_rate(REC, REL, 2) == 1.0


def test_catalog_coverage():
    # distinct {1, 2, 3} over 6 train items = 0.5
    assert catalog_coverage([[1, 2], [2, 3], []], 6) == pytest.approx(0.5)
    assert catalog_coverage([], 0) == 0.0


def test_rank_top_k_ties_go_to_lower_index_and_excludes():
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1, 0.5])
    # 0.9 at {1, 3} then 0.5 at {0, 2, 5}, lower index first
    assert rank_top_k(scores, 4).tolist() == [1, 3, 0, 2]
    # excluding 1 and 0 shifts the list
    assert rank_top_k(scores, 3, exclude=[1, 0]).tolist() == [3, 2, 5]
    # k larger than the candidates returns them all, sorted
    assert rank_top_k(scores, 10, exclude=np.array([0, 1, 2, 3])).tolist() == [5, 4]
    assert rank_top_k(scores, 0).tolist() == []
