"""Normalisation, exclusions, weighted blend and top-k paging."""

from __future__ import annotations

import numpy as np
import pytest

from xo_recommender.engine.blend import (
    Ranking,
    candidate_mask,
    interacted_to_exclude,
    normalise,
    rank,
    top_k,
)

# top_k ---------------------------------------------------------------------------------


def test_top_k_orders_by_score_and_breaks_ties_to_the_lower_index():
    s = np.array([0.5, 0.9, 0.5, 0.1, 0.9, 0.5])
    assert top_k(s, 4).tolist() == [1, 4, 0, 2]


def test_top_k_never_returns_nan_or_minus_inf():
    s = np.array([np.nan, -np.inf, 0.2, 0.0])
    assert top_k(s, 10).tolist() == [2, 3]


def test_top_k_pages_do_not_overlap_and_cover_the_full_order():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, size=200).astype(np.float32)  # many ties
    s[rng.random(200) < 0.2] = -np.inf
    full = top_k(s, 1000)
    pages = [top_k(s, 7, offset) for offset in range(0, 210, 7)]
    joined = np.concatenate(pages)
    assert joined.tolist() == full.tolist()
    assert len(set(joined.tolist())) == joined.size
    expected = sorted(np.flatnonzero(np.isfinite(s)).tolist(), key=lambda i: (-s[i], i))
    assert full.tolist() == expected


def test_top_k_handles_a_sea_of_equal_scores():
    s = np.zeros(1000)
    s[[700, 3]] = 1.0
    assert top_k(s, 4).tolist() == [3, 700, 0, 1]
    assert top_k(s, 2, offset=2).tolist() == [0, 1]


def test_top_k_of_a_large_catalogue_is_the_full_sort_whatever_the_scores():
    """Where a sample of the scores sets the threshold (many scores, a short page), the
    page is still exactly the full order: ties, -inf and NaN included."""
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.choice([8_000, 20_000]))
        s = (rng.integers(0, 4, n) if trial % 3 == 0 else rng.random(n)).astype(np.float32)
        s[rng.random(n) < [0.0, 0.5, 0.995][trial % 3]] = -np.inf
        s[rng.random(n) < 0.01] = np.nan
        k, offset = int(rng.integers(1, 16)), int(rng.choice([0, 3, 10]))
        expected = sorted(np.flatnonzero(s > -np.inf).tolist(), key=lambda i: (-s[i], i))
        assert top_k(s, k, offset).tolist() == expected[offset:offset + k]


def test_top_k_edge_cases():
    assert top_k(np.array([1.0, 2.0]), 0).size == 0
    assert top_k(np.array([1.0, 2.0]), 3, offset=2).size == 0
    with pytest.raises(ValueError):
        top_k(np.array([1.0]), -1)


# normalise -----------------------------------------------------------------------------


def test_max_normalisation_uses_candidates_only():
    s = np.array([10.0, 2.0, 1.0, 0.0])
    mask = np.array([False, True, True, True])
    out = normalise(s, mask, "max")
    assert out.tolist() == pytest.approx([0.0, 1.0, 0.5, 0.0])


def test_normalisation_clips_negatives_and_nan():
    out = normalise(np.array([-1.0, np.nan, 2.0]), None, "max")
    assert out.tolist() == [0.0, 0.0, 1.0]
    assert not normalise(np.array([-1.0, 0.0]), None, "max").any()


def test_none_keeps_absolute_scale():
    out = normalise(np.array([0.1, 0.2]), None, "none")
    assert out.tolist() == pytest.approx([0.1, 0.2])


def test_percentile_keeps_zeros_at_zero_and_ranks_the_rest():
    out = normalise(np.array([0.0, 0.0, 0.3, 0.1, 5.0]), None, "percentile")
    assert out[0] == 0 and out[1] == 0
    assert out[4] == pytest.approx(1.0)
    assert out[4] > out[2] > out[3] > 0


def test_unknown_normalisation_raises():
    with pytest.raises(ValueError):
        normalise(np.ones(2), None, "zscore")


# exclusions ----------------------------------------------------------------------------


def test_interacted_to_exclude_applies_per_type_rules():
    items = [3, 3, 5, 7, 9]
    types = ["view", "save", "purchase", "view", "like"]
    out = interacted_to_exclude(items, types, {"like", "save"})
    assert out.tolist() == [3, 9]  # purchase repeatable, a view does not hide
    assert interacted_to_exclude(items, types, set()).size == 0


def test_candidate_mask_combines_every_rule():
    mask = candidate_mask(
        8,
        active=np.array([True] * 7 + [False]),
        seen=[0],
        hidden=np.array([1]),
        exclude=[2],
        allowed=np.array([True, True, True, True, True, False, True, True]),
        within_radius=np.array([True, True, True, True, False, True, True, True]),
    )
    assert np.flatnonzero(mask).tolist() == [3, 6]


def test_candidate_mask_rejects_out_of_range_indices_and_wrong_lengths():
    with pytest.raises(ValueError):
        candidate_mask(3, exclude=[3])
    with pytest.raises(ValueError):
        candidate_mask(3, hidden=[-1])
    with pytest.raises(ValueError):
        candidate_mask(3, active=np.ones(4, dtype=bool))


# rank ----------------------------------------------------------------------------------


def _components() -> dict[str, np.ndarray]:
    return {
        "collaborative": np.array([9.0, 4.0, 0.0, 2.0, 0.0], dtype=np.float32),
        "interest": np.array([0.0, 0.0, 0.8, 0.4, 0.0], dtype=np.float32),
        "prior": np.array([0.1, 0.2, 0.3, 0.4, 0.5], dtype=np.float32),
    }


def test_rank_excludes_masked_items_even_when_they_score_best():
    mask = candidate_mask(5, seen=[0], hidden=[2])
    r = rank(_components(), {"collaborative": 1.0, "interest": 1.0}, k=5, mask=mask)
    assert 0 not in r.indices and 2 not in r.indices
    assert set(r.indices.tolist()) == {1, 3, 4}


def test_rank_weights_decide_the_winner():
    comps = _components()
    collab = rank(comps, {"collaborative": 1.0, "interest": 0.1}, k=1)
    interest = rank(comps, {"collaborative": 0.1, "interest": 1.0}, k=1)
    assert collab.indices.tolist() == [0]
    assert interest.indices.tolist() == [2]


def test_rank_contributions_sum_to_the_score_and_name_the_driver():
    comps = _components()
    r = rank(comps, {"collaborative": 1.0, "interest": 1.0, "prior": 2.0}, k=5)
    assert isinstance(r, Ranking)
    assert r.components == ("collaborative", "interest", "prior")
    assert r.contributions.shape == (5, 3)
    assert r.contributions.sum(axis=1) == pytest.approx(r.scores, abs=1e-6)
    assert (r.scores[:-1] >= r.scores[1:]).all()
    assert r.scores.max() <= 1.0 + 1e-6
    by_item = dict(zip(r.indices.tolist(), r.strongest(), strict=True))
    assert by_item[0] == "collaborative"
    assert by_item[4] == "prior"  # item 4 has nothing but the prior


def test_rank_normalises_over_candidates_not_over_excluded_items():
    comps = {"collaborative": np.array([100.0, 1.0, 0.5])}
    r = rank(comps, {"collaborative": 1.0}, k=2, mask=candidate_mask(3, seen=[0]))
    assert r.indices.tolist() == [1, 2]
    assert r.scores.tolist() == pytest.approx([1.0, 0.5])


def test_rank_prior_is_not_max_normalised_by_default():
    comps = {"prior": np.array([0.2, 0.1], dtype=np.float32)}
    r = rank(comps, {"prior": 1.0}, k=2)
    assert r.scores.tolist() == pytest.approx([0.2, 0.1])
    forced = rank(comps, {"prior": 1.0}, k=2, normalisation={"prior": "max"})
    assert forced.scores.tolist() == pytest.approx([1.0, 0.5])


def test_rank_ignores_weights_for_absent_components_and_zero_weights():
    r = rank(_components(), {"collaborative": 1.0, "proximity": 5.0, "interest": 0.0}, k=2)
    assert r.components == ("collaborative",)
    assert r.scores[0] == pytest.approx(1.0)


def test_rank_pages_do_not_overlap():
    rng = np.random.default_rng(1)
    comps = {"a": rng.random(100), "b": rng.random(100)}
    mask = candidate_mask(100, exclude=np.arange(0, 100, 3))
    weights = {"a": 1.0, "b": 2.0}
    pages = [rank(comps, weights, k=10, offset=o, mask=mask).indices for o in (0, 10, 20)]
    seen = np.concatenate(pages)
    assert len(set(seen.tolist())) == 30
    assert not np.isin(seen, np.arange(0, 100, 3)).any()
    assert seen.tolist() == rank(comps, weights, k=30, mask=mask).indices.tolist()


def test_rank_returns_fewer_results_when_candidates_run_out():
    r = rank(_components(), {"prior": 1.0}, k=10, mask=candidate_mask(5, exclude=[0, 1, 2]))
    assert r.indices.tolist() == [4, 3]
    assert len(r) == 2


def test_rank_take_reorders_everything_together():
    r = rank(_components(), {"collaborative": 1.0, "prior": 1.0}, k=3)
    t = r.take([2, 0])
    assert t.indices.tolist() == [r.indices[2], r.indices[0]]
    assert t.contributions[0].tolist() == r.contributions[2].tolist()


def test_rank_rejects_bad_input():
    with pytest.raises(ValueError):
        rank(_components(), {"collaborative": -1.0}, k=1)
    with pytest.raises(ValueError):
        rank(_components(), {"nothing": 1.0}, k=1)
    with pytest.raises(ValueError):
        rank({"a": np.ones(3), "b": np.ones(4)}, {"a": 1.0, "b": 1.0}, k=1)
