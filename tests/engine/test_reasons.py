"""Reasons: chosen by contribution, phrased from evidence, never empty."""

from __future__ import annotations

import numpy as np
import pytest

from xo_recommender.engine.reasons import reasons_for

NAMES = ["Blue Bottle", "Joe's Barbers", "Crumbs Bakery", "Paper Cafe"]
COMPONENTS = ("collaborative", "interest", "profile", "prior", "rating", "proximity")


def _one(row, **kwargs):
    return reasons_for(np.array([row], dtype=np.float32), COMPONENTS, item_names=NAMES, **kwargs)[0]


def test_collaborative_names_the_users_item_and_action():
    out = _one([0.6, 0, 0, 0, 0, 0], collaborative_sources=[2], collaborative_types=["save"])
    assert out == ["Because you saved Crumbs Bakery"]


def test_reasons_are_ordered_by_contribution():
    out = _one(
        [0.2, 0.5, 0, 0.3, 0, 0],
        collaborative_sources=[0],
        collaborative_types=["purchase"],
        matching_terms=[["Coffee"]],
    )
    assert out == [
        "Matches your interest in Coffee",
        "Popular on this site",
        "Because you bought Blue Bottle",
    ]


def test_at_most_three_reasons():
    out = _one(
        [0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
        collaborative_sources=[0],
        profile_sources=[1],
        matching_terms=[["Tea"]],
        distances_km=[1.234],
        ratings=[4.9],
    )
    assert len(out) == 3
    assert len(set(out)) == 3


def test_profile_reason_names_the_similar_item():
    out = _one([0, 0, 0.4, 0, 0, 0], profile_sources=[3], profile_types=["like"])
    assert out == ["Similar to Paper Cafe you liked"]


def test_one_history_item_is_named_once():
    """Not "Because you saved Crumbs Bakery" and "Similar to Crumbs Bakery you saved"."""
    out = _one([0.5, 0, 0.4, 0.3, 0, 0], collaborative_sources=[2],
               collaborative_types=["save"], profile_sources=[2], profile_types=["save"])
    assert out == ["Because you saved Crumbs Bakery", "Popular on this site"]
    other = _one([0.5, 0, 0.4, 0, 0, 0], collaborative_sources=[2],
                 collaborative_types=["save"], profile_sources=[3], profile_types=["like"])
    assert other == ["Because you saved Crumbs Bakery", "Similar to Paper Cafe you liked"]


def test_popular_near_you_needs_a_near_known_distance():
    assert _one([0, 0, 0, 0.5, 0, 0], distances_km=[2.0]) == ["Popular near you"]
    assert _one([0, 0, 0, 0.5, 0, 0], distances_km=[200.0]) == ["Popular on this site"]
    assert _one([0, 0, 0, 0.5, 0, 0], distances_km=[np.nan]) == ["Popular on this site"]
    assert _one([0, 0, 0, 0.5, 0, 0], site_name="Example") == ["Popular on Example"]


def test_distance_reason_is_formatted_to_one_decimal():
    assert _one([0, 0, 0, 0, 0, 0.4], distances_km=[3.456]) == ["3.5 km away"]


def test_highly_rated_is_only_said_of_highly_rated_items():
    assert _one([0, 0, 0, 0.1, 0.4, 0], ratings=[4.6])[0] == "Highly rated"
    assert "Highly rated" not in _one([0, 0, 0, 0.1, 0.4, 0], ratings=[3.1])


def test_weak_components_are_not_named_beside_strong_ones():
    out = _one([0.9, 0, 0, 0.01, 0, 0], collaborative_sources=[1], collaborative_types=["like"])
    assert out == ["Because you liked Joe's Barbers"]


def test_never_empty_even_without_any_contribution_or_evidence():
    rows = np.array(
        [
            [0, 0, 0, 0, 0, 0],  # nothing at all
            [0, 0.5, 0, 0, 0, 0],  # interest but no matching term known
            [0, 0, 0.5, 0, 0, 0],  # profile but no source
            [0, 0, 0, 0, 0, 0.5],  # proximity but no distance
        ],
        dtype=np.float32,
    )
    out = reasons_for(rows, COMPONENTS, item_names=NAMES)
    assert len(out) == 4
    assert all(1 <= len(r) <= 3 and all(r) for r in out)


def test_fallback_prefers_a_known_distance():
    out = _one([0, 0, 0, 0, 0, 0], distances_km=[0.75])
    assert out == ["0.8 km away"]


def test_collaborative_without_a_source_still_has_a_reason():
    assert _one([0.5, 0, 0, 0, 0, 0]) == ["Liked by people with similar taste"]


def test_unknown_interaction_type_reads_naturally():
    out = _one([0.5, 0, 0, 0, 0, 0], collaborative_sources=[0], collaborative_types=[None])
    assert out == ["Because you liked Blue Bottle"]


def test_many_results_each_get_their_own_evidence():
    rows = np.array([[0.5, 0, 0, 0, 0, 0], [0, 0.5, 0, 0, 0, 0]], dtype=np.float32)
    out = reasons_for(
        rows,
        COMPONENTS,
        item_names=NAMES,
        collaborative_sources=np.array([1, -1]),
        collaborative_types=["share", None],
        matching_terms=[[], ["Vegan", "Bakery"]],
    )
    assert out == [["Because you shared Joe's Barbers"], ["Matches your interest in Vegan"]]


def test_misaligned_evidence_raises():
    with pytest.raises(ValueError):
        reasons_for(np.zeros((2, 6)), COMPONENTS, item_names=NAMES, distances_km=[1.0])
    with pytest.raises(ValueError):
        reasons_for(np.zeros((2, 5)), COMPONENTS, item_names=NAMES)


def test_from_where_the_user_usually_goes_nearness_has_no_number_and_no_you():
    # ranked from an inferred centre (no point given): "near you" and "2.0 km away"
    # would claim a place the user never gave
    out = _one([0, 0, 0, 0.3, 0, 0.6], distances_km=[2.0], usual_place=True)
    assert out == ["Near places you often go", "Popular near places you often go"]
    assert _one([0, 0, 0, 0.3, 0, 0.6], distances_km=[2.0]) == ["2.0 km away",
                                                                  "Popular near you"]
    # farther than near: nothing to say of distance, and the fallback has no number
    assert _one([0, 0, 0, 0, 0, 0], distances_km=[30.0], usual_place=True) == [
        "Recommended for you"]
    assert _one([0, 0, 0, 0, 0, 0], distances_km=[2.0], usual_place=True) == [
        "Near places you often go"]
