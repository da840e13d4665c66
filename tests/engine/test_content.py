"""TF-IDF content model: interest match, engagement profile, similar items, explanations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from xo_recommender.engine.content import ContentModel, normalise_term

ITEMS = [
    ["Coffee", "Bakery"],  # 0
    ["coffee", "Wifi"],  # 1
    ["Barber"],  # 2
    [],  # 3: no terms at all
]


@pytest.fixture
def model() -> ContentModel:
    return ContentModel.build(ITEMS)


def test_terms_are_matched_case_and_space_insensitively():
    assert normalise_term("  Vegan   Bakery ") == "vegan bakery"
    m = ContentModel.build([["Vegan  Bakery"], ["vegan bakery"]])
    assert m.n_terms == 1
    assert m.labels.tolist() == ["Vegan Bakery"]  # first spelling is the display label


def test_rows_are_l2_normalised_tfidf(model):
    rows = model.item_terms.toarray()
    norms = np.linalg.norm(rows, axis=1)
    assert norms[:3] == pytest.approx([1.0, 1.0, 1.0], rel=1e-6)
    assert norms[3] == 0.0
    # Smoothed IDF with n=4: coffee is on 2 items, bakery on 1.
    j_coffee, j_bakery = model.vocabulary["coffee"], model.vocabulary["bakery"]
    assert model.idf[j_coffee] == pytest.approx(math.log(5 / 3) + 1, rel=1e-6)
    assert model.idf[j_bakery] == pytest.approx(math.log(5 / 2) + 1, rel=1e-6)
    # The rarer term weighs more on item 0.
    assert rows[0, j_bakery] > rows[0, j_coffee]


def test_interest_scores_pick_the_obvious_match(model):
    s = model.interest_scores(["barber"])
    assert s.dtype == np.float32 and s.shape == (4,)
    assert int(np.argmax(s)) == 2
    assert s[2] == pytest.approx(1.0)
    assert s[[0, 1, 3]].tolist() == [0.0, 0.0, 0.0]


def test_interest_in_two_terms_prefers_the_item_having_both(model):
    s = model.interest_scores(["Coffee", "wifi"])
    assert s[1] > s[0] > 0
    assert s[2] == 0.0


def test_unknown_or_no_interests_score_zero(model):
    assert not model.interest_scores(["sushi"]).any()
    assert not model.interest_scores([]).any()


def test_profile_scores_follow_what_the_user_engaged_with(model):
    row = sp.csr_matrix(np.array([[0.0, 0.0, 3.0, 0.0]], dtype=np.float32))
    s = model.profile_scores(row)
    assert int(np.argmax(s)) == 2
    assert s[[0, 1, 3]].tolist() == [0.0, 0.0, 0.0]


def test_profile_weights_decide_between_engaged_items(model):
    # Engaged with the bakery (weight 5) and, weakly, with the barber (weight 1).
    dense = np.array([5.0, 0.0, 1.0, 0.0], dtype=np.float32)
    s = model.profile_scores(dense)
    assert s[0] > s[2]
    # Item 1 shares "coffee" with the heavily weighted item 0, nothing with the barber.
    assert s[1] > 0
    sparse = model.profile_scores(sp.csr_matrix(dense[None, :]))
    assert sparse == pytest.approx(s, abs=1e-6)


def test_profile_of_a_user_without_interactions_is_zero(model):
    assert not model.profile_scores(np.zeros(4, dtype=np.float32)).any()


def test_profile_rejects_a_row_of_the_wrong_length(model):
    with pytest.raises(ValueError):
        model.profile_scores(np.ones(5))
    with pytest.raises(ValueError):
        model.profile_scores(sp.csr_matrix(np.ones((1, 5))))


def test_similar_items_excludes_itself_and_unrelated_items(model):
    idx, sims = model.similar_items(0, n=10)
    assert idx.tolist() == [1]
    assert 0 < sims[0] < 1
    idx, _ = model.similar_items(2, n=10)
    assert idx.size == 0


def test_similar_items_ranks_by_shared_terms():
    m = ContentModel.build([["a", "b", "c"], ["a"], ["a", "b", "c"], ["a", "b"]])
    idx, sims = m.similar_items(0, n=3)
    assert idx.tolist() == [2, 3, 1]
    assert sims[0] == pytest.approx(1.0)
    assert np.all(np.diff(sims) <= 0)


def test_matching_terms_names_the_rarer_shared_term_first(model):
    assert model.matching_terms(0, ["coffee", "BAKERY", "barber"]) == ["Bakery", "Coffee"]
    assert model.matching_terms(0, ["coffee", "bakery"], n=1) == ["Bakery"]
    assert model.matching_terms(2, ["coffee"]) == []
    assert model.matching_terms_for([0, 1, 2], ["coffee"]) == [["Coffee"], ["Coffee"], []]


def test_profile_sources_point_at_the_engaged_item_behind_a_result(model):
    # The user engaged with items 1 (coffee+wifi) and 2 (barber).
    row = np.array([0.0, 2.0, 1.0, 0.0], dtype=np.float32)
    source, strength = model.profile_sources([0, 2, 3], row)
    assert source.tolist() == [1, -1, -1]  # item 2 is not its own source
    assert strength[0] > 0
    assert strength[1:].tolist() == [0.0, 0.0]


def test_profile_sources_are_the_same_from_dense_and_sparse_rows(monkeypatch):
    """A page's term rows are multiplied dense over a small vocabulary and sparse over a
    large one: the same sources and strengths either way."""
    from xo_recommender.engine import content

    rng = np.random.default_rng(4)
    vocab = [f"t{i}" for i in range(30)]
    m = ContentModel.build([list(rng.choice(vocab, int(rng.integers(1, 6)), replace=False))
                            for _ in range(60)])
    row = np.where(rng.random(60) < 0.3, rng.uniform(0.5, 3.0, 60), 0.0).astype(np.float32)
    results = rng.choice(60, 15, replace=False)
    dense = m.profile_sources(results, row)
    monkeypatch.setattr(content, "_DENSE_BLOCK", 0)
    sparse = m.profile_sources(results, row)
    assert (dense[0] >= 0).sum() > 5
    assert dense[0].tolist() == sparse[0].tolist()
    assert dense[1] == pytest.approx(sparse[1], rel=1e-6)


def test_round_trip_through_bytes_without_pickle(model):
    payload = model.to_bytes()
    assert isinstance(payload, bytes)
    loaded = ContentModel.from_bytes(payload)
    assert (loaded.item_terms != model.item_terms).nnz == 0
    assert loaded.terms.tolist() == model.terms.tolist()
    assert loaded.labels.tolist() == model.labels.tolist()
    assert loaded.interest_scores(["coffee"]) == pytest.approx(model.interest_scores(["coffee"]))


def test_empty_catalogue_round_trips():
    m = ContentModel.from_bytes(ContentModel.build([]).to_bytes())
    assert m.n_items == 0 and m.n_terms == 0
    assert m.interest_scores(["x"]).shape == (0,)


def test_a_bare_string_instead_of_a_term_list_is_refused():
    with pytest.raises(TypeError):
        ContentModel.build(["coffee"])


def test_blank_and_none_terms_are_skipped():
    m = ContentModel.build([["", "  ", None, "tea"]])
    assert m.terms.tolist() == ["tea"]


def test_out_of_range_item_index_raises(model):
    with pytest.raises(IndexError):
        model.similar_items(4)
    with pytest.raises(IndexError):
        model.matching_terms(-1, ["coffee"])


@pytest.mark.parametrize("n_query_terms", [1, 2, 40])
def test_narrow_and_broad_queries_score_like_the_dense_product(n_query_terms):
    # Narrow queries take the postings-gather path, broad ones the sparse mat-vec.
    rng = np.random.default_rng(7)
    vocab = [f"t{i}" for i in range(40)]
    m = ContentModel.build([list(rng.choice(vocab, 3)) for _ in range(200)])
    interests = vocab[:n_query_terms]
    expected = m.item_terms.toarray() @ m.interest_vector(interests)
    assert m.interest_scores(interests) == pytest.approx(expected, abs=1e-6)
