"""Popularity and rating priors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from xo_recommender.engine.priors import (
    bayesian_average,
    cold_start_prior,
    decayed_popularity,
    log_normalise,
    matrix_popularity,
    rating_prior,
    shrunk_rating,
)

DAY = 86400.0


def test_an_interaction_one_half_life_old_counts_half():
    now = 100 * DAY
    pop = decayed_popularity(
        np.array([0, 1, 1]),
        3,
        timestamps=np.array([now, now - 7 * DAY, now - 14 * DAY]),
        now=now,
        half_life=7 * DAY,
    )
    assert pop.tolist() == pytest.approx([1.0, 0.5 + 0.25, 0.0])


def test_weights_scale_and_recent_beats_old():
    now = 10 * DAY
    pop = decayed_popularity(
        np.array([0, 1]),
        2,
        timestamps=np.array([now - 30 * DAY, now]),
        now=now,
        half_life=7 * DAY,
        weights=np.array([4.0, 1.0]),
    )
    # Four times the weight a month ago is still worth less than one event today.
    assert pop[0] == pytest.approx(4.0 * 0.5 ** (30 / 7))
    assert pop[1] > pop[0]


def test_future_timestamps_and_unknown_items_are_harmless():
    pop = decayed_popularity(
        np.array([0, 5, -1]), 2, timestamps=np.array([20.0, 0.0, 0.0]), now=10.0, half_life=1.0
    )
    assert pop.tolist() == [1.0, 0.0]


def test_half_life_must_be_positive():
    with pytest.raises(ValueError):
        decayed_popularity(np.array([0]), 1, timestamps=np.array([0.0]), now=0.0, half_life=0)


def test_matrix_popularity_sums_columns():
    m = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]]))
    assert matrix_popularity(m).tolist() == [4.0, 0.0, 2.0]


def test_log_normalise_is_in_unit_range_and_compresses_the_head():
    v = log_normalise(np.array([0.0, 9.0, 99.0, np.nan, -3.0]))
    assert v.dtype == np.float32
    assert v[2] == pytest.approx(1.0)
    assert v[0] == 0.0 and v[3] == 0.0 and v[4] == 0.0
    # Linear scaling would give 0.09; log scaling gives log(10)/log(100) = 0.5.
    assert v[1] == pytest.approx(0.5, rel=1e-6)
    assert not log_normalise(np.zeros(3)).any()


def test_bayesian_average_formula():
    # m = 4, C = 2: item with sum 10 over 2 votes -> (2*4 + 10) / (2 + 2) = 4.5
    out = bayesian_average(np.array([10.0, 0.0]), np.array([2, 0]), prior_mean=4.0, prior_count=2)
    assert out.tolist() == pytest.approx([4.5, 4.0])


def test_bayesian_average_defaults_to_the_catalogue_mean():
    out = bayesian_average(np.array([5.0, 300.0, 0.0]), np.array([1, 100, 0]), prior_count=5)
    m = 305.0 / 101.0
    assert out[2] == pytest.approx(m)
    assert out[0] == pytest.approx((5 * m + 5.0) / 6)


def test_one_five_star_review_does_not_beat_a_hundred_good_ones():
    shrunk = shrunk_rating(np.array([5.0, 4.8]), np.array([1, 100]), prior_mean=3.5)
    assert shrunk[1] > shrunk[0]


def test_rating_without_counts_keeps_order_but_moves_towards_the_mean():
    raw = np.array([5.0, 4.0, 2.0, np.nan])
    shrunk = shrunk_rating(raw, prior_mean=3.0, prior_count=4.0, assumed_count=1.0)
    assert shrunk[0] > shrunk[1] > shrunk[2]
    assert shrunk[0] == pytest.approx((4 * 3.0 + 5.0) / 5)
    assert shrunk[3] == pytest.approx(3.0)  # unrated: the prior itself
    assert abs(shrunk[0] - 3.0) < abs(raw[0] - 3.0)


def test_rating_prior_maps_the_scale_to_unit_range():
    p = rating_prior(np.array([1.0, 3.0, 5.0, 6.0, np.nan]))
    assert p.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError):
        rating_prior(np.array([1.0]), scale=(5.0, 1.0))


def test_cold_start_prior_mixes_popularity_and_rating():
    prior = cold_start_prior(np.array([1.0, 0.0]), np.array([0.0, 1.0]), rating_weight=0.25)
    assert prior.dtype == np.float32
    assert prior.tolist() == pytest.approx([0.75, 0.25])
    with pytest.raises(ValueError):
        cold_start_prior(np.array([1.0]), np.array([1.0]), rating_weight=1.5)


def test_everything_unrated_gives_a_zero_rating_prior():
    shrunk = shrunk_rating(np.array([np.nan, np.nan]))
    assert all(math.isnan(x) for x in shrunk)
    assert not rating_prior(shrunk).any()
