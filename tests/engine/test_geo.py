"""Haversine distance, decay and radius filtering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xo_recommender.engine.geo import (
    ItemLocations,
    haversine_km,
    proximity_scores,
    validate_point,
    within_radius,
)

PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)


def test_paris_london_is_about_343_km():
    # Widely quoted great-circle distance between the two city centres: ~343.5 km.
    d = haversine_km(*PARIS, [LONDON[0]], [LONDON[1]])
    assert d[0] == pytest.approx(343.5, abs=1.0)


def test_distance_is_symmetric_and_zero_to_itself():
    there = haversine_km(*PARIS, [LONDON[0], PARIS[0]], [LONDON[1], PARIS[1]])
    back = haversine_km(*LONDON, [PARIS[0]], [PARIS[1]])
    assert there[0] == pytest.approx(back[0], rel=1e-5)
    assert there[1] == pytest.approx(0.0, abs=1e-3)


def test_one_degree_of_latitude_is_about_111_km():
    d = haversine_km(0.0, 0.0, [1.0], [0.0])
    assert d[0] == pytest.approx(2 * math.pi * 6371.0088 / 360, rel=1e-4)


def test_antimeridian_is_short_way_round():
    d = haversine_km(0.0, 179.9, [0.0], [-179.9])
    assert d[0] < 25.0


def test_items_without_usable_coordinates_get_nan_and_no_proximity():
    lats = [LONDON[0], None, np.nan, 95.0, 10.0]
    lons = [LONDON[1], 2.0, 2.0, 2.0, np.nan]
    d = haversine_km(*PARIS, lats, lons)
    assert np.isfinite(d[0])
    assert np.isnan(d[1:]).all()
    scores = proximity_scores(d, scale_km=10.0)
    assert (scores[1:] == 0).all()
    assert not within_radius(d, 1e6)[1:].any()


def test_item_locations_reports_which_items_have_a_location():
    locs = ItemLocations([1.0, None], [2.0, 3.0])
    assert len(locs) == 2
    assert locs.has_location.tolist() == [True, False]


@pytest.mark.parametrize("decay", ["exp", "cauchy"])
def test_proximity_is_one_at_zero_and_decreases_with_distance(decay):
    s = proximity_scores(np.array([0.0, 1.0, 10.0, 100.0]), scale_km=10.0, decay=decay)
    assert s.dtype == np.float32
    assert s[0] == pytest.approx(1.0)
    assert (np.diff(s) < 0).all()


def test_decay_values_at_the_scale():
    d = np.array([10.0])
    assert proximity_scores(d, 10.0, "exp")[0] == pytest.approx(math.exp(-1), rel=1e-6)
    assert proximity_scores(d, 10.0, "cauchy")[0] == pytest.approx(0.5, rel=1e-6)


def test_cauchy_keeps_far_items_apart_where_exp_does_not():
    far = np.array([50.0, 500.0])
    assert proximity_scores(far, 1.0, "cauchy")[0] > proximity_scores(far, 1.0, "cauchy")[1]
    assert proximity_scores(far, 1.0, "exp")[0] == pytest.approx(0.0, abs=1e-12)


def test_within_radius_is_inclusive():
    mask = within_radius(np.array([0.0, 5.0, 5.0001, np.nan]), 5.0)
    assert mask.tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (91.0, 0.0, "latitude"),
        (-90.5, 0.0, "latitude"),
        (0.0, 180.5, "longitude"),
        (float("nan"), 0.0, "finite"),
        (0.0, float("inf"), "finite"),
        ("north", 0.0, "numbers"),
        (None, 0.0, "numbers"),
    ],
)
def test_validate_point_rejects_bad_points_with_a_clear_message(lat, lon, message):
    with pytest.raises(ValueError, match=message):
        validate_point(lat, lon)


def test_validate_point_accepts_edges_and_strings_of_numbers():
    assert validate_point(90, -180) == (90.0, -180.0)
    assert validate_point("48.5", "2.25") == (48.5, 2.25)


def test_distances_from_an_invalid_point_raise():
    locs = ItemLocations([0.0], [0.0])
    with pytest.raises(ValueError):
        locs.distances_km(100.0, 0.0)


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        proximity_scores(np.array([1.0]), scale_km=0.0)
    with pytest.raises(ValueError):
        proximity_scores(np.array([1.0]), decay="linear")
    with pytest.raises(ValueError):
        within_radius(np.array([1.0]), -1.0)
