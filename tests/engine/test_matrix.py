"""Interaction weighting and the id <-> index mapping."""

import math

import numpy as np
import pytest

from xo_recommender.engine.matrix import IdIndex, build_matrix, interaction_weights, user_row

DAY = 86_400.0


def test_id_index_sorted_round_trip_and_unknown():
    index = IdIndex.from_ids([30, 10, 20, 10])
    assert index.ids.tolist() == [10, 20, 30]
    assert index.to_index([20, 30, 99, 5]).tolist() == [1, 2, -1, -1]
    assert index.to_ids([2, 0]).tolist() == [30, 10]
    assert len(index) == 3
    assert IdIndex.from_ids([]).to_index([1]).tolist() == [-1]


def test_id_index_refuses_unsorted_ids():
    with pytest.raises(ValueError):
        IdIndex(np.array([3, 1, 2]))
    with pytest.raises(ValueError):
        IdIndex(np.array([1, 1]))


def test_weights_count_and_decay():
    w = interaction_weights(
        weight=np.array([2.0, 1.0, 1.0]),
        count=np.array([1, math.e**2, 1]),
        last_seen=np.array([10 * DAY, 10 * DAY, 0.0]),
        half_life=5 * DAY,
    )
    # 2 * (1 + ln 1) * 0.5**0 = 2 ; 1 * (1 + 2) = 3 ; aged 10 days at half-life 5: 0.25
    assert w.tolist() == pytest.approx([2.0, 3.0, 0.25])


def test_no_decay_when_half_life_none_and_future_is_age_zero():
    stamps = np.array([0.0, 100 * DAY])
    assert interaction_weights(last_seen=stamps).tolist() == [1.0, 1.0]
    w = interaction_weights(last_seen=stamps, now=50 * DAY, half_life=50 * DAY)
    assert w.tolist() == pytest.approx([0.5, 1.0])
    with pytest.raises(ValueError):
        interaction_weights(last_seen=stamps, half_life=0)


def test_build_matrix_sums_duplicates_and_keeps_shape():
    m = build_matrix(
        np.array([0, 0, 1]), np.array([2, 2, 0]), weight=np.array([1.0, 3.0, 2.0]), shape=(3, 4)
    )
    assert m.shape == (3, 4)
    assert m.dtype == np.float32
    assert m.toarray().tolist() == [[0, 0, 4, 0], [2, 0, 0, 0], [0, 0, 0, 0]]


def test_user_row_drops_unknown_items():
    row = user_row(np.array([1, -1, 7]), 4, weight=np.array([2.0, 5.0, 5.0]))
    assert row.shape == (1, 4)
    assert row.toarray().tolist() == [[0, 2, 0, 0]]


@pytest.mark.parametrize("repeats", [1, 2, 3, 5])
def test_user_row_equals_the_general_construction(repeats):
    """The one-row path gives the general (COO) construction's row bit for bit,
    an item's repeated entries (several types of interaction) summed alike."""
    rng = np.random.default_rng(repeats)
    items = np.repeat(rng.choice(500, 40, replace=False), repeats)
    rng.shuffle(items)
    items[:3] = -1  # unknown businesses are left out
    weight = rng.uniform(0.1, 5.0, items.size)
    weight[5] = 0.0
    count = rng.integers(1, 4, items.size).astype(float)
    seen = 1e9 + rng.uniform(0, 200 * DAY, items.size)
    kw = {"now": 1e9 + 200 * DAY, "half_life": 30 * DAY}
    row = user_row(items, 500, weight, count, seen, **kw)
    keep = items >= 0
    general = build_matrix(np.zeros(int(keep.sum()), np.int64), items[keep], weight[keep],
                           count[keep], seen[keep], shape=(1, 500), **kw)
    assert row.indices.tolist() == general.indices.tolist()
    assert row.data.tobytes() == general.data.tobytes()
    assert row.indptr.tolist() == general.indptr.tolist()


def test_dense_rows_is_the_dense_row_slice_duplicates_added():
    import scipy.sparse as sp

    from xo_recommender.engine.matrix import dense_rows

    m = sp.random(40, 30, density=0.2, format="csr", random_state=3, dtype=np.float32)
    # row 7's entries twice over: not canonical, and toarray adds them
    a, b = m.indptr[7], m.indptr[8]
    assert b > a
    twice = sp.csr_matrix((np.concatenate([m.data[:b], m.data[a:]]),
                           np.concatenate([m.indices[:b], m.indices[a:]]),
                           np.r_[m.indptr[:8], m.indptr[8:] + (b - a)]), shape=m.shape)
    assert not twice.has_canonical_format
    for matrix in (m, twice):
        for rows in ([], [3], [7, 1, 7, 39], np.arange(40)):
            rows = np.asarray(rows, dtype=np.int64)
            got, expected = dense_rows(matrix, rows), matrix[rows].toarray()
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert got.tobytes() == expected.tobytes()


def test_take_rows_is_the_csr_row_slice():
    import scipy.sparse as sp

    from xo_recommender.engine.matrix import take_rows

    rng = np.random.default_rng(1)
    m = sp.random(40, 30, density=0.2, format="csr", random_state=2, dtype=np.float32)
    for rows in ([], [3], [5, 1, 5, 39], rng.integers(0, 40, 25)):
        rows = np.asarray(rows, dtype=np.int64)
        got, expected = take_rows(m, rows), m[rows]
        assert got.shape == expected.shape
        assert (got != expected).nnz == 0 and got.dtype == expected.dtype
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)
        assert got.data.tobytes() == expected.data.tobytes()
