"""Collaborative model on tiny data where the right neighbours are obvious."""

import numpy as np
import pytest
import scipy.sparse as sp

from xo_recommender.engine.collaborative import CollaborativeModel
from xo_recommender.engine.matrix import build_matrix, user_row


def matrix(rows, n_items):
    u = [r for r, items in enumerate(rows) for _ in items]
    i = [i for items in rows for i in items]
    return build_matrix(np.array(u), np.array(i), shape=(len(rows), n_items))


# Items 0 & 1 are always taken together, as are 2 & 3; one user bridges 1 and 2.
PAIRS = matrix([[0, 1], [0, 1], [0, 1], [2, 3], [2, 3], [2, 3], [1, 2]], 4)


def fitted(**kw):
    kw.setdefault("l2_rel", 0.1)
    return CollaborativeModel(**kw).fit(PAIRS)


def test_similar_items_finds_the_partner():
    model = fitted()
    assert model.path_ == "exact"
    for item, partner in [(0, 1), (1, 0), (2, 3), (3, 2)]:
        idx, weights = model.similar_items(item, 1)
        assert idx.tolist() == [partner]
        assert weights[0] > 0
    idx, _ = model.similar_items(0, 10)
    assert 0 not in idx.tolist()


def test_score_is_row_times_similarity_and_float32():
    model = fitted()
    row = user_row(np.array([0]), 4)
    scores = model.score(row)
    assert scores.dtype == np.float32
    assert scores.shape == (4,)
    np.testing.assert_allclose(scores, model.similarity_[0].toarray().ravel(), rtol=1e-6)
    assert scores[1] > scores[2] and scores[1] > scores[3]
    # a dense vector is accepted too
    np.testing.assert_allclose(model.score(np.array([1.0, 0, 0, 0])), scores)
    with pytest.raises(ValueError):
        model.score(np.ones(5))


def test_fold_in_freshness_new_interaction_changes_scores():
    model = fitted()
    before = model.score(user_row(np.array([0]), 4))
    after = model.score(user_row(np.array([0, 2]), 4))
    # taking item 2 raises its partner 3, without refitting ...
    assert after[3] > before[3]
    # ... by exactly item 2's row of S (scores are additive in the user's history)
    np.testing.assert_allclose(after - before, model.similarity_[2].toarray().ravel(), atol=1e-6)
    # and a heavier weight on the new interaction moves 3 further
    heavier = model.score(user_row(np.array([0, 2]), 4, weight=np.array([1.0, 3.0])))
    assert heavier[3] > after[3]


def test_explain_names_the_contributing_history_item():
    model = fitted()
    row = user_row(np.array([0, 2]), 4)
    assert model.explain(row, 3) == [2]
    assert model.explain(row, 1) == [0]
    assert len(model.explain(row, 3, top=5)) <= 2
    assert model.explain(user_row(np.array([], dtype=np.int64), 4), 3) == []


def test_serialisation_round_trip_without_pickle():
    model = fitted()
    data = model.to_bytes()
    assert isinstance(data, bytes)
    again = CollaborativeModel.from_bytes(data)
    assert again.path_ == model.path_
    assert again.top_k == model.top_k and again.l2_rel == model.l2_rel
    row = user_row(np.array([1, 3]), 4)
    np.testing.assert_array_equal(again.score(row), model.score(row))
    assert (again.similarity_ != model.similarity_).nnz == 0


def test_from_bytes_rejects_other_artifacts():
    import io

    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(b'{"format": "other"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="format"):
        CollaborativeModel.from_bytes(buf.getvalue())


def test_unfitted_model_refuses():
    with pytest.raises(RuntimeError):
        CollaborativeModel().score(np.zeros(3))


def test_top_k_limits_row_length():
    model = CollaborativeModel(l2_rel=0.1, top_k=1).fit(PAIRS)
    assert np.diff(model.similarity_.indptr).max() == 1


def clustered(n_users=300, n_clusters=4, items_per_cluster=10, per_user=5, seed=0):
    """Users pick items only inside their cluster; item popularity decays within it."""
    rng = np.random.default_rng(seed)
    rows = []
    p = 1.0 / np.arange(1, items_per_cluster + 1)
    p /= p.sum()
    for u in range(n_users):
        c = u % n_clusters
        items = rng.choice(items_per_cluster, size=per_user, replace=False, p=p)
        rows.append((c * items_per_cluster + items).tolist())
    return matrix(rows, n_clusters * items_per_cluster), items_per_cluster


def test_scale_path_is_chosen_above_threshold_and_neighbours_stay_in_cluster():
    x, size = clustered()
    exact = CollaborativeModel(top_k=20).fit(x)
    approx = CollaborativeModel(top_k=20, exact_max_items=12, chunk_flops=2_000).fit(x)
    assert exact.path_ == "exact"
    assert approx.path_ == "approx"
    assert approx.similarity_.shape == (x.shape[1], x.shape[1])
    assert np.diff(approx.similarity_.indptr).max() <= 20
    # an item never recommends itself, on either path
    assert not approx.similarity_.diagonal().any()
    assert not exact.similarity_.diagonal().any()
    for item in range(x.shape[1]):
        idx, _ = approx.similar_items(item, 3)
        assert len(idx) == 3
        assert set((idx // size).tolist()) == {item // size}, item
    # serving works the same on the approximation, and it round-trips
    row = user_row(np.array([0, 1]), x.shape[1])
    scores = approx.score(row)
    best = int(np.argmax(np.where(np.isin(np.arange(x.shape[1]), [0, 1]), -np.inf, scores)))
    assert best // size == 0
    again = CollaborativeModel.from_bytes(approx.to_bytes())
    assert again.path_ == "approx"
    np.testing.assert_array_equal(again.score(row), scores)


def test_scale_path_agrees_with_exact_on_the_head():
    x, _ = clustered(seed=1)
    exact = CollaborativeModel(top_k=None).fit(x)
    approx = CollaborativeModel(top_k=None, exact_max_items=30).fit(x)
    pop = np.asarray((x != 0).sum(axis=0)).ravel()
    head = np.argsort(-pop, kind="stable")[:30]
    top_exact = {int(i): exact.similar_items(int(i), 1)[0].tolist() for i in head}
    top_approx = {int(i): approx.similar_items(int(i), 1)[0].tolist() for i in head}
    agree = sum(top_exact[i] == top_approx[i] for i in top_exact)
    assert agree >= 0.8 * len(head)


def test_empty_item_and_empty_matrix_columns_are_harmless():
    x = sp.csr_matrix(PAIRS.toarray()[:, [0, 1, 2, 3, 0]] * np.array([1, 1, 1, 1, 0]))
    model = CollaborativeModel(l2_rel=0.1).fit(x)
    assert np.isfinite(model.similarity_.data).all()
    assert model.similar_items(4, 3)[0].tolist() == []


def test_scale_path_does_not_depend_on_threads_chunks_or_the_fast_product(monkeypatch):
    """The Gram pass runs in spans on threads with a preallocated product; none of that
    may change S: one thread, tiny spans and scipy's plain ``@`` give the same matrix."""
    from xo_recommender.engine import collaborative

    x, _ = clustered(n_users=400, n_clusters=5, seed=3)
    kw = dict(top_k=7, exact_max_items=15, head_items=9)
    fast = CollaborativeModel(threads=2, **kw).fit(x).similarity_
    monkeypatch.setattr(collaborative, "_csr_matmat", None)
    plain = CollaborativeModel(threads=1, chunk_flops=50, **kw).fit(x).similarity_
    assert fast.nnz and np.diff(fast.indptr).max() <= 7
    assert not fast.diagonal().any()
    np.testing.assert_allclose(fast.toarray(), plain.toarray(), rtol=1e-5, atol=1e-7)


def test_scale_path_leaves_the_callers_matrix_alone():
    x, _ = clustered(seed=4)
    x = sp.csr_matrix(x, dtype=np.float32)
    x.data[:5] = 0.0
    before = (x.data.copy(), x.indices.copy())
    CollaborativeModel(top_k=5, exact_max_items=12).fit(x)
    np.testing.assert_array_equal(x.data, before[0])
    np.testing.assert_array_equal(x.indices, before[1])
