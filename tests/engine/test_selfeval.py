"""The learned ranking: it follows the data, keeps a baseline when it cannot beat it,
and says why when there is too little to learn from."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from tests.engine.synthetic import drifting_site, site
from xo_recommender.engine import features
from xo_recommender.engine.data import Catalogue, Events, UserProfiles
from xo_recommender.engine.holdout import temporal_split
from xo_recommender.engine.model import EngineParams, Query, Recommender
from xo_recommender.engine.selfeval import (
    BASELINES,
    BY_USER,
    DEFAULT_RANKING,
    CrossFitted,
    Evaluator,
    choose_serving,
    learn_ranking,
    rankings,
    within_noise,
)

#: Every feature made from distance (the proximity reason's, and popular × near).
PROXIMITY = (*(n for n, group in features.REASON_GROUP.items() if group == "proximity"),
             "popular_nearby")
INTEREST = tuple(n for n, group in features.REASON_GROUP.items() if group == "interest")


def drop(weights, names):
    return {k: (0.0 if k in names else v) for k, v in weights.items()}


def ndcg_without(driver, segment):
    """Holdout NDCG of the learned weights, whole and without each group of features.

    For new users (``"cold"``) nothing from a history can stand in for a dropped group.
    """
    catalogue, events, users = site(driver, seed=5, n_users=600)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=1,
                            budget_seconds=20, max_users=300)
    outer = temporal_split(events, seed=9, cold_fraction=0.2)
    now = float(outer.train.last_seen.max())
    model = Recommender.fit(catalogue, outer.train, EngineParams(), now=now)
    w = learned.candidates[segment]["model"]
    figures = Evaluator(model, outer, users, now).measure({segment: {
        "all": w, "no_proximity": drop(w, PROXIMITY), "no_interest": drop(w, INTEREST)}})
    return {k: v["ndcg@10"] for k, v in rankings(figures[segment]).items()}


def test_where_only_distance_matters_proximity_carries_the_ranking():
    ndcg = ndcg_without("distance", "history")
    assert ndcg["all"] - ndcg["no_proximity"] > 0.1
    assert ndcg["all"] - ndcg["no_proximity"] > 5 * abs(ndcg["all"] - ndcg["no_interest"])


def test_where_only_interests_matter_interest_carries_the_ranking():
    ndcg = ndcg_without("interest", "cold")
    assert ndcg["all"] - ndcg["no_interest"] > 0.05
    assert ndcg["all"] - ndcg["no_interest"] > 5 * abs(ndcg["all"] - ndcg["no_proximity"])


def test_where_collaboration_carries_no_signal_a_baseline_serves():
    """Choices driven by a popularity no feature but popularity sees: the learned model
    cannot beat "popular" by the margin, so a baseline serves, and it says so."""
    catalogue, events, users = site("popularity", seed=2)
    users = UserProfiles(users.ids, [[] for _ in users.ids],
                         np.full(len(users), np.nan), np.full(len(users), np.nan))
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=20, max_users=300)
    assert learned.serving["history"] != "model"
    assert learned.ranking["history"] == learned.candidates["history"][
        learned.serving["history"]]
    assert "did not beat" in learned.as_metrics()["guardrail"]


def test_where_tastes_drift_a_shorter_half_life_is_chosen():
    """Old interactions point the wrong way: the holdout picks the faster fade, says what
    it tried, and the served parameters carry it."""
    catalogue, events, users = drifting_site()
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=60, max_users=300)
    assert learned.hyperparameters.get("half_life_days") == 30.0
    tried = learned.as_metrics()["tuning"]["tried"]
    assert set(tried["half_life_days"]) == {"90", "30", "none"}
    assert tried["half_life_days"]["30"] > tried["half_life_days"]["90"]
    served = learned.apply(EngineParams())
    assert served.half_life_days == 30.0 and served.ranking == learned.ranking


def test_a_lead_counts_only_beyond_one_standard_error_of_its_mean():
    """``beyond_noise``, the rule of the guardrail's floor and of the hyperparameters: a
    steady lead counts; the same mean lead made of users won and lost does not, nor a
    lead on one user or over values that do not pair up."""
    from xo_recommender.engine.selfeval import beyond_noise

    base = np.full(100, 0.5)
    assert beyond_noise(base + 0.01, base)
    swings = base.copy()
    swings[:10] += 0.5  # ten users won, eight lost: a mean lead of 0.01, 0.47 SE
    swings[10:18] -= 0.5
    assert not beyond_noise(swings, base)
    assert not beyond_noise(base[:1] + 1.0, base[:1])
    assert not beyond_noise(base[:50] + 1.0, base)


def test_a_hyperparameter_measured_better_within_noise_keeps_its_default(monkeypatch):
    """The drifting site's faster fade is chosen on a lead beyond noise; judged as noise,
    the default stays and a note says what measured better."""
    from xo_recommender.engine import selfeval

    monkeypatch.setattr(selfeval, "beyond_noise", lambda better, than: False)
    catalogue, events, users = drifting_site()
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=60, max_users=300)
    assert "half_life_days" not in learned.hyperparameters
    tried = learned.as_metrics()["tuning"]["tried"]["half_life_days"]
    assert tried["30"] > tried["90"] * 1.01
    assert any(note.startswith("half_life_days kept at 90: 30 measured better, within "
                               "noise") for note in learned.notes)


def test_a_random_holdout_learns_where_times_cannot_split():
    """Every interaction at one instant: by time there is no "before" to learn from and
    the defaults serve; a random holdout (an offline file split at random) learns."""
    catalogue, events, users = site("interest", seed=3, n_users=300)
    instant = replace(events, last_seen=np.zeros(len(events)),
                      first_seen=np.zeros(len(events)))
    by_time = learn_ranking(catalogue, instant, users, EngineParams(), seed=0,
                            budget_seconds=20, max_users=200)
    assert by_time.ranking == DEFAULT_RANKING and not by_time.serving
    at_random = learn_ranking(catalogue, instant, users, EngineParams(), seed=0,
                              budget_seconds=20, max_users=200, split_by="random")
    assert at_random.serving and at_random.holdout["users"] > 0
    assert any("random share" in note for note in at_random.notes)


def test_hyperparameters_stay_at_their_defaults_without_evidence():
    catalogue, events, users = site("distance", seed=4)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=300)
    assert "half_life_days" not in learned.hyperparameters  # times carry no signal here
    assert learned.apply(EngineParams()).half_life_days == EngineParams().half_life_days


def test_the_guardrail_rule():
    fig = lambda v: {"ndcg@10": v}  # noqa: E731
    assert choose_serving({"model": fig(0.5), "popular": fig(0.3), "heuristic": fig(0.4),
                           "hand_set": fig(0.45)}) == "model"
    # the blend that served before learning is a fallback too: never worse than before
    assert choose_serving({"model": fig(0.5), "popular": fig(0.3),
                           "hand_set": fig(0.9)}) == "hand_set"
    assert choose_serving({"model": fig(0.402), "popular": fig(0.3),
                           "heuristic": fig(0.4)}) == "heuristic"
    assert choose_serving(None) is None


def _by_user(**rankings):
    """Figures of one segment as ``_measure`` gives them, from each user's NDCG@10."""
    out = {name: {"ndcg@10": float(np.mean(v))} for name, v in rankings.items()}
    out["users"] = len(next(iter(rankings.values())))
    out[BY_USER] = {name: np.asarray(v, np.float32) for name, v in rankings.items()}
    return out


def test_a_ranking_displaces_popular_nearby_only_by_a_lead_beyond_noise():
    """300 users whose lists rarely hit (NDCG@10 near 0.02, as every list reads for new
    users a host knows nothing of): a list hitting for 10 other users than the floor's 9
    measures 11 % better, and that is noise; a lead shown user by user is not."""
    floor = np.zeros(300)
    floor[:9] = 0.5
    lucky = np.zeros(300)
    lucky[100:110] = 0.5
    steady = floor + 0.004  # a smaller lead, but on every user
    figures = _by_user(model=floor, popular=floor, popular_nearby=floor, hand_set=lucky)
    assert figures["hand_set"]["ndcg@10"] > 1.1 * figures["popular_nearby"]["ndcg@10"]
    assert choose_serving(figures) == "popular_nearby"
    assert within_noise(figures, "popular_nearby") == ["hand_set"]
    plain = {name: value for name, value in figures.items() if name != BY_USER}
    assert choose_serving(plain) == "hand_set"  # by the means alone, the lucky list
    assert choose_serving(_by_user(model=floor, popular_nearby=floor, hand_set=lucky,
                                   heuristic=steady)) == "heuristic"
    # the learned model too: beating every fallback by the margin is not enough
    assert choose_serving(_by_user(model=lucky, popular_nearby=floor)) == "popular_nearby"
    assert choose_serving(_by_user(model=steady, popular_nearby=floor)) == "model"
    # a fallback that is noise is no bar for the model either
    assert choose_serving(_by_user(model=steady + 0.002, popular_nearby=floor,
                                   hand_set=lucky, heuristic=steady)) == "model"
    # one measured user shows no noise: the floor holds
    assert choose_serving(_by_user(model=[0.9], popular_nearby=[0.1])) == "popular_nearby"


@pytest.mark.parametrize(("t", "displaces"), [(0.8, False), (1.3, True)])
def test_the_lead_needs_one_standard_error(t, displaces):
    """A lead of ``t`` standard errors: below one the floor serves, above it the other."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(400)
    noise = (noise - noise.mean()) / noise.std(ddof=1)  # mean 0, sd 1 exactly
    floor = np.full(400, 0.5)
    other = floor + 0.1 * (noise + t / np.sqrt(400))  # mean lead t × its standard error
    figures = _by_user(model=floor, popular_nearby=floor, heuristic=other)
    assert choose_serving(figures) == ("heuristic" if displaces else "popular_nearby")


def test_measured_figures_carry_each_users_ndcg_for_the_guardrail_only():
    """Each user's NDCG@10 lies at the same place for every ranking: the guardrail pairs
    them user by user (checked against measuring each user alone)."""
    catalogue, events, users = site("interest", seed=3)
    outer = temporal_split(events, seed=9, cold_fraction=0.2)
    now = float(outer.train.last_seen.max())
    model = Recommender.fit(catalogue, outer.train, EngineParams(), now=now)
    weights = {"near": {"near_3km": 1.0}, "popular": {"popularity": 1.0}}
    evaluator = Evaluator(model, outer, users, now)
    ids = {"history": sorted(outer.targets)[:40], "cold": sorted(outer.cold_targets)[:40]}
    folds = CrossFitted({u: i % 2 for i, u in enumerate(ids["history"])},
                        [weights, {"near": weights["popular"], "popular": weights["near"]}])
    for weighting in (weights, folds):
        figures = evaluator.measure({"history": weighting, "cold": weights}, users=ids)
        for segment in ("history", "cold"):
            by_user = figures[segment][BY_USER]
            measured = [u for u in ids[segment] if evaluator.measure(
                {segment: weighting if segment == "history" else weights},
                users={**{k: [] for k in ids}, segment: [u]})[segment]]
            assert len(measured) == figures[segment]["users"] > 10
            for name in weights:
                assert math.isclose(float(np.mean(by_user[name])),
                                    figures[segment][name]["ndcg@10"], abs_tol=1e-4)
            for i, user_id in enumerate(measured[:12]):
                alone = evaluator.measure(
                    {segment: weighting if segment == "history" else weights},
                    users={**{k: [] for k in ids}, segment: [user_id]})[segment]
                for name in weights:
                    assert math.isclose(float(by_user[name][i]), alone[name]["ndcg@10"],
                                        abs_tol=1e-4)
            assert not np.array_equal(by_user["near"], by_user["popular"])


def test_a_floor_held_against_noise_is_said_where_serving_is_told(monkeypatch):
    """When a ranking measured better than popular nearby only within noise, the version
    says which, in its guardrail text (the rebuild's "Serving:" line, the admin) and
    notes. The final measure's new-user figures are replaced by a lucky list's."""
    catalogue, events, users = site("interest", seed=3)
    real = Evaluator.measure

    def lucky_hand_set(self, weightings, **kwargs):
        out = real(self, weightings, **kwargs)
        cold = out.get("cold")
        if cold and "hand_set" in cold:
            n = cold["users"]
            floor, lucky = np.zeros(n), np.zeros(n)
            floor[:2], lucky[n - 3:] = 0.5, 0.5
            per_user = {name: floor for name in cold[BY_USER]}
            per_user["hand_set"] = lucky
            out["cold"] = {**_by_user(**per_user), "users": n}
        return out

    monkeypatch.setattr(Evaluator, "measure", lucky_hand_set)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=20, max_users=200)
    assert learned.serving["cold"] == "popular_nearby"
    assert learned.within_noise == {"cold": ["hand_set"]}
    assert "new users: popular_nearby (hand_set measured better, within noise)" in \
        learned.guardrail_text()
    assert any(n.startswith("new users: popular_nearby serves; hand_set measured")
               for n in learned.notes)


def test_metrics_have_the_stored_shape():
    catalogue, events, users = site("interest", seed=3)
    metrics = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=20, max_users=200).as_metrics()
    holdout = metrics["holdout"]
    assert holdout["users"] > 0 and holdout["cold_users"] > 0
    for block in (holdout["model"], *holdout["baselines"].values()):
        for figures in block.values():
            assert set(figures) == {"ndcg@10", "precision@10", "recall@10", "coverage"}
            assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert {"popular", "popular_nearby", "collaborative_only", "heuristic"} <= set(
        holdout["baselines"])
    assert metrics["serving"]
    json.dumps(metrics)  # stored as JSON: no per-user arrays


def test_a_segment_nobody_of_was_held_out_says_it_was_not_measured():
    """120 users: enough to learn from, too few to hold any out whole as new users. The
    new users' ranking is learned from the returning ones (history features zeroed) and
    serves, and the output says it was not measured rather than that it won."""
    catalogue, events, users = site("interest", seed=3, n_users=120)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=10, max_users=200)
    assert learned.holdout["users"] > 0 and learned.holdout["cold_users"] == 0
    assert learned.serving["cold"] == "model"
    text = learned.guardrail_text()
    assert "new users: the learned model (not measured: too few new users" in text
    assert "users with a history: the learned model (not" not in text


@pytest.mark.parametrize("case", ["one user", "one business", "one instant", "empty"])
def test_tiny_or_degenerate_data_gets_defaults_and_a_reason(case):
    catalogue, events, users = site("random", n_users=30, n_items=20, per_user=5)
    if case == "one user":
        events = events.select(events.user_ids == 1)
    elif case == "one business":
        events = events.select(events.item_ids == 1)
    elif case == "one instant":
        events.first_seen = np.zeros(len(events))
        events.last_seen = np.zeros(len(events))
    else:
        events = Events.empty(("view",))
    learned = learn_ranking(catalogue, events, users, EngineParams(), budget_seconds=5)
    assert learned.ranking == DEFAULT_RANKING
    assert learned.notes
    assert learned.as_metrics()["holdout"] is None
    model = Recommender.fit(catalogue, events, EngineParams(ranking=learned.ranking))
    assert model.recommend(Query(interests=["cafe"], limit=5))


def test_nan_and_infinite_inputs_give_finite_scores():
    catalogue, events, users = site("distance", n_users=50, n_items=30, per_user=5)
    catalogue.latitudes[:5] = np.nan
    catalogue.ratings[:] = np.inf
    catalogue.popularity[:3] = np.nan
    weights = {name: 1.0 for name in features.FEATURES}
    model = Recommender.fit(catalogue, events,
                            EngineParams(ranking={"history": weights, "cold": weights}))
    history = events.select(events.user_ids == 1)
    for query in (Query(history=history, interests=["cafe"], location=(33.8, -84.3)),
                  Query(interests=["cafe"], location=(33.8, -84.3)), Query()):
        ranked = model.recommend(query)
        assert ranked and all(math.isfinite(r.score) for r in ranked)
    with pytest.raises(ValueError, match="finite"):
        model.recommend(Query(location=(float("nan"), 0.0)))


def test_learned_ranking_survives_the_artifact_round_trip():
    catalogue, events, users = site("interest", n_users=60, n_items=40, per_user=6)
    weights = {"interest_category": 2.0, "nearness": 1.0, "popularity": 0.5}
    model = Recommender.fit(catalogue, events,
                            EngineParams(ranking={"history": weights, "cold": weights}))
    again = Recommender.from_bytes(model.to_bytes())
    query = Query(interests=["cafe"], location=(33.8, -84.3), limit=5)
    assert again.params.ranking == model.params.ranking
    assert [r.item_id for r in again.recommend(query)] == [
        r.item_id for r in model.recommend(query)]
    for name in ("popularity", "trend", "hosted", "rating", "prior"):
        assert np.array_equal(again.signals[name], model.signals[name])


def test_catalogue_without_places_or_interests_still_ranks():
    catalogue = Catalogue(ids=np.arange(1, 6), names=list("abcde"), categories=[[]] * 5)
    events = Events(np.array([1, 1, 2]), np.array([1, 2, 1]), np.zeros(3, np.int64), ("view",))
    weights = dict(DEFAULT_RANKING["history"])
    model = Recommender.fit(catalogue, events,
                            EngineParams(ranking={"history": weights, "cold": weights}))
    ranked = model.recommend(Query(history=events.select(events.user_ids == 2)))
    assert [r.item_id for r in ranked][:1] == [2]  # what user 1 also viewed leads
    assert len(ranked) == 5  # a view does not hide a business


def test_reasons_follow_the_features_that_lifted_each_result():
    """A strong history item no longer explains businesses it did not lift."""
    catalogue, events, users = site("interest", n_users=80, n_items=60, per_user=8, seed=4)
    history = events.select(events.user_ids == 1)
    query = Query(history=history, interests=["cafe"], location=(33.8, -84.3), limit=8)
    by_interest = {"interest_category": 3.0, "collaborative": 0.05, "nearness": 0.5}
    model = Recommender.fit(catalogue, events,
                            EngineParams(ranking={"history": by_interest, "cold": by_interest}))
    ranked = model.recommend(query)
    assert all(not reason.startswith("Because you") for r in ranked for reason in r.reasons)
    assert any(reason == "Matches your interest in cafe" for r in ranked for reason in r.reasons)
    by_taste = {"any_taste": 3.0, "nearness": 0.5}  # a named interest is told as such
    model = Recommender.fit(catalogue, events,
                            EngineParams(ranking={"history": by_taste, "cold": by_taste}))
    ranked = model.recommend(query)
    assert any(reason == "Matches your interest in cafe" for r in ranked for reason in r.reasons)
    assert all(not reason.startswith("You often go to cafe") for r in ranked
               for reason in r.reasons)
    by_history = {"collaborative": 3.0, "nearness": 0.1}
    model = Recommender.fit(catalogue, events,
                            EngineParams(ranking={"history": by_history, "cold": by_history}))
    assert model.recommend(query)[0].reasons[0].startswith("Because you viewed")


def test_diversified_pages_neither_repeat_nor_skip():
    catalogue, events, users = site("interest", n_users=60, n_items=120, per_user=6, seed=8)
    model = Recommender.fit(catalogue, events)
    base = Query(interests=["cafe", "books"], location=(33.8, -84.3), diversify=True)
    whole = [r.item_id for r in model.recommend(replace(base, limit=40))]
    pages = [r.item_id for offset in range(0, 40, 10)
             for r in model.recommend(replace(base, limit=10, offset=offset))]
    assert pages == whole and len(set(pages)) == 40


def test_a_site_without_any_category_learns_and_serves():
    """Categories are optional in the host (``BUSINESS_FIELDS["categories"] = None``, or
    none assigned yet): every category feature is then zero, never an error."""
    catalogue, events, users = site("distance", n_users=200, n_items=80, per_user=8)
    bare = replace(catalogue, categories=[[] for _ in range(len(catalogue.ids))])
    learned = learn_ranking(bare, events, users, EngineParams(), budget_seconds=5)
    assert learned.serving["history"] in ("model", *BASELINES)
    model = Recommender.fit(bare, events, EngineParams(ranking=learned.ranking))
    history = events.select(events.user_ids == 1)
    query = Query(history=history, interests=["cafe"], location=(33.8, -84.3), limit=5)
    ranked = model.recommend(query)
    assert len(ranked) == 5 and all(math.isfinite(r.score) for r in ranked)
    values = features.compute(model, model.history_row(history), interests=["cafe"],
                              point=(33.8, -84.3))
    for name in ("category", "category_lift", "unstated_lift", "unstated_taste"):
        assert not values[name].any()


def test_a_site_whose_businesses_are_all_inactive_says_so_and_keeps_the_defaults():
    catalogue, events, users = site("distance", n_users=200, n_items=80, per_user=8)
    closed = replace(catalogue, active=np.zeros(len(catalogue.ids), bool))
    learned = learn_ranking(closed, events, users, EngineParams(), budget_seconds=5)
    assert learned.ranking == {k: dict(v) for k, v in DEFAULT_RANKING.items()}
    assert any("no business is active" in note for note in learned.notes)


def test_learning_compares_only_the_businesses_a_page_ranks_together():
    """A page lists the businesses within ``FAR_KM`` before any other, so the learner's
    candidates and targets are those (another city's are no negatives a page would show,
    nor discoveries it could), unless fewer than a page of them are within reach."""
    catalogue, events, users = site("distance", n_users=80, n_items=120, per_user=6, seed=3)
    moved = np.random.default_rng(0).random(len(catalogue.ids)) < 0.4
    elsewhere = replace(catalogue, latitudes=np.where(moved, catalogue.latitudes + 2.0,
                                                      catalogue.latitudes))  # ~220 km
    split = temporal_split(events, seed=1)
    now = float(split.train.last_seen.max())
    model = Recommender.fit(elsewhere, split.train, EngineParams(), now=now)
    evaluator = Evaluator(model, split, users, now)
    user = sorted(split.targets)[0]
    _, mask, _ = evaluator(user, split.targets[user], cold=False)
    far = evaluator.distances(user) > features.FAR_KM  # from where it was ranked
    assert far[mask].any() and (~far & mask).sum() >= 10
    assert np.array_equal(evaluator.within_reach(user, mask), mask & ~far)
    far_id, near_id = model.items.ids[far & mask][0], model.items.ids[~far & mask][0]
    _, candidates, targets = evaluator.sample(user, np.array([far_id, near_id]), False,
                                              np.random.default_rng(0))
    assert candidates.size and not far[candidates].any()
    assert model.items.ids[targets].tolist() == [near_id]  # the far one can't reach a page

    page = mask & (far | (np.cumsum(~far) <= 10))  # ten within reach: a page
    assert (page & ~far).sum() == 10
    assert np.array_equal(evaluator.within_reach(user, page), page & ~far)
    few = mask & (far | (np.cumsum(~far) <= 9))  # nine: less than a page
    assert (few & ~far).sum() == 9
    assert np.array_equal(evaluator.within_reach(user, few), few)


def test_the_learner_and_its_tuning_learn_only_from_businesses_within_reach(monkeypatch):
    """Every learning user's candidates, in learning the weights and in choosing the
    hyperparameters, lie within ``FAR_KM`` (``nearness`` is zero from there on)."""
    from xo_recommender.engine.ranker import ListwiseSamples

    catalogue, events, users = site("distance", n_users=240, n_items=120, per_user=8, seed=3)
    moved = np.random.default_rng(0).random(len(catalogue.ids)) < 0.4
    elsewhere = replace(catalogue, latitudes=np.where(moved, catalogue.latitudes + 2.0,
                                                      catalogue.latitudes))
    nearest_far = []  # per added sample: the largest nearness among its candidates ...
    original = ListwiseSamples.add

    def add(self, values, candidates, target_idx, **kwargs):
        nearness = values["nearness"][candidates]
        nearest_far.append(float(nearness.min()))  # ... the smallest, 0 if one is far
        return original(self, values, candidates, target_idx, **kwargs)

    monkeypatch.setattr(ListwiseSamples, "add", add)
    learned = learn_ranking(elsewhere, events, users, EngineParams(), seed=2,
                            budget_seconds=30, max_users=120)
    assert "l2_rel" in learned.tried or "half_life_days" in learned.tried  # tuning ran
    assert len(nearest_far) > 200 and min(nearest_far) > 0


def _spy_on_learning(monkeypatch):
    """Record, while learning: each ``_fit_segment`` call as (segment, the users whose rows
    it learned from, its weightings), and each ``measure`` call as (weightings, users)."""
    from xo_recommender.engine import selfeval

    fitted, measured = [], []
    fit, measure = selfeval._fit_segment, selfeval.Evaluator.measure

    def spy_fit(segment, samples, *args, **kwargs):
        assert len(samples.owners) == len(samples.rows) and None not in samples.owners
        candidates = fit(segment, samples, *args, **kwargs)
        fitted.append((segment, set(samples.owners), candidates))
        return candidates

    def spy_measure(self, weightings, **kwargs):
        measured.append((weightings, kwargs.get("users")))
        return measure(self, weightings, **kwargs)

    monkeypatch.setattr(selfeval, "_fit_segment", spy_fit)
    monkeypatch.setattr(selfeval.Evaluator, "measure", spy_measure)
    return fitted, measured


def test_few_users_are_each_measured_with_weights_learned_without_them(monkeypatch):
    """Below ``CROSS_FIT_BELOW`` held-out users, every one of them is measured (not half),
    each with the weights of a fold whose learning never saw them, and the weights that
    serve are learned from all of them."""
    from xo_recommender.engine import selfeval

    catalogue, events, users = site("interest", seed=3, n_users=300)
    new_users = set(temporal_split(events, fraction=0.2, seed=0).cold_targets)  # as learned
    monkeypatch.setattr(selfeval, "FEW_NEW_USERS", 0)  # no more new users (see below)
    fitted, measured = _spy_on_learning(monkeypatch)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=200)

    by_segment = {s: [(who, c) for seg, who, c in fitted if seg == s] for s in ("history", "cold")}
    (everybody_h, served_h), *folds_h = by_segment["history"]  # the weights that serve,
    (everybody_c, served_c), *folds_c = by_segment["cold"]  # then the folds
    assert learned.candidates == {"history": served_h, "cold": served_c}
    crossed, reported = measured[-1]
    assert new_users and set(reported["cold"]) == new_users  # every one is measured
    # the users whose measure chose the hyperparameters learn, but are not measured
    assert learned.tried and len(measured) > 1
    judged = set(measured[0][1]["history"])  # the tuning's first measure
    assert judged and judged <= everybody_h and not judged & set(reported["history"])
    assert all(isinstance(crossed[segment], selfeval.CrossFitted)
               for segment in ("history", "cold"))
    assert len(folds_h) == len(folds_c) == selfeval.CROSS_FOLDS
    fold_of = crossed["history"].fold_of
    for fold, ((learned_h, weights_h), (learned_c, weights_c)) in enumerate(
            zip(folds_h, folds_c, strict=True)):
        in_fold = {u for u, f in fold_of.items() if f == fold}
        assert in_fold & new_users and in_fold - new_users
        assert not in_fold & (learned_h | learned_c)  # never saw them
        assert learned_h | in_fold >= everybody_h  # ... and saw everybody else
        assert learned_c | in_fold >= everybody_c
        for user in in_fold:  # each user is ranked with the weights of their own fold
            assert crossed["history"].of(user) is weights_h
            assert crossed["cold"].of(user) is weights_c
    # every other held-out user with a history is measured, not only the half that did
    # not learn
    assert learned.holdout["users"] >= len(everybody_h - judged)
    assert any(f"learned {selfeval.CROSS_FOLDS} times" in note for note in learned.notes)


def test_few_new_users_cross_fit_while_many_returning_users_learn_on_halves(monkeypatch):
    """New users are a tenth of the held-out users: where those with a history are many
    enough for two halves, the new ones can still be too few, and they alone cross-fit.
    A returning user's rows (their history hidden) teach the new-user ranking in every
    fold: they are never measured as new users."""
    from xo_recommender.engine import selfeval

    catalogue, events, users = site("interest", seed=3, n_users=300)
    split = temporal_split(events, fraction=0.2, seed=0)
    assert len(split.cold_targets) < 100 <= len(split.targets)
    monkeypatch.setattr(selfeval, "CROSS_FIT_BELOW", 100)
    monkeypatch.setattr(selfeval, "FEW_NEW_USERS", 0)
    fitted, measured = _spy_on_learning(monkeypatch)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=200)

    weightings, reported = measured[-1]
    history = [(who, c) for seg, who, c in fitted if seg == "history"]
    assert len(history) == 1  # learned once, on one half ...
    learners_h, served_h = history[0]
    assert weightings["history"] is served_h is learned.candidates["history"]
    assert reported["history"] and not set(reported["history"]) & learners_h  # ... measured
    crossed = weightings["cold"]  # on the other; the new users cross-fit:
    assert isinstance(crossed, selfeval.CrossFitted)
    (everybody, served_c), *folds = [(who, c) for seg, who, c in fitted if seg == "cold"]
    assert len(folds) == selfeval.CROSS_FOLDS and learned.candidates["cold"] is served_c
    new_users = set(split.cold_targets)  # all of them are measured, each in their fold
    assert set(reported["cold"]) == new_users == set(crossed.fold_of)
    assert learners_h <= everybody and new_users & everybody
    for fold, (who, weights) in enumerate(folds):
        in_fold = {u for u, f in crossed.fold_of.items() if f == fold}
        assert in_fold and not in_fold & who and who | in_fold >= everybody
        assert learners_h <= who  # returning users' rows learn in every fold
        assert all(crossed.of(user) is weights for user in in_fold)
    assert learned.holdout["cold_users"] > 0 and learned.holdout["users"] > 0
    assert any(f"learned {selfeval.CROSS_FOLDS} times" in note for note in learned.notes)


def test_few_new_users_are_joined_by_more_held_out_of_models_of_their_own(monkeypatch):
    """Where fewer than ``FEW_NEW_USERS`` new users are held out, groups of as many
    other users are held out whole, each from an evaluation model trained without them,
    and measured with new-user weights learned without their rows: a small site chooses
    its new users' ranking on several times as many of them, and learns it from them."""
    from xo_recommender.engine import selfeval

    catalogue, events, users = site("interest", seed=3, n_users=300)
    new_users = set(temporal_split(events, fraction=0.2, seed=0).cold_targets)  # as learned
    apart = []
    hold_apart = selfeval._new_users_apart

    def spy(*args, **kwargs):
        apart.extend(hold_apart(*args, **kwargs))
        return apart

    monkeypatch.setattr(selfeval, "_new_users_apart", spy)
    fitted, measured = _spy_on_learning(monkeypatch)
    sampled, sample = [], selfeval.Evaluator.sample

    def spy_sample(self, user_id, targets, cold, rng):
        values, candidates, targets_within = sample(self, user_id, targets, cold, rng)
        if cold and targets_within.size:  # a row to learn from, of a user as new
            sampled.append(user_id)
        return values, candidates, targets_within

    monkeypatch.setattr(selfeval.Evaluator, "sample", spy_sample)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=200)

    groups = [set(evaluator.split.cold_targets) for evaluator in apart]
    everyone = set().union(*groups)
    assert len(groups) >= 2 and all(len(group) <= len(new_users) for group in groups)
    assert len(everyone) == sum(map(len, groups)) and not everyone & new_users  # disjoint
    for evaluator, group in zip(apart, groups, strict=True):
        theirs = np.isin(events.user_ids, list(group))
        train = evaluator.split.train
        assert len(train) == int((~theirs).sum())  # trained without them, the rest whole
        assert not np.isin(train.user_ids, list(group)).any()
        for user, targets in evaluator.split.cold_targets.items():
            assert set(targets.tolist()) == set(events.item_ids[events.user_ids == user].tolist())
    weightings, reported = measured[-1]
    assert set(reported["cold"]) == new_users | everyone
    crossed = weightings["cold"]
    (everybody, served), *cold_fits = [(who, c) for seg, who, c in fitted if seg == "cold"]
    assert served is learned.candidates["cold"]
    # they teach new users' ranking too, as new users
    taught = everyone.intersection(sampled)
    assert len(taught) >= 0.9 * len(everyone) and taught <= everybody
    # ... and join the folds: no more fits, each measured with weights learned without
    # their rows, whether or not they teach the ranking with their history hidden too
    assert len(cold_fits) == selfeval.CROSS_FOLDS
    for fold, (who, weights) in enumerate(cold_fits):
        in_fold = {u for u in new_users | everyone if crossed.fold_of[u] == fold}
        assert len(in_fold & everyone) > len(everyone) / (2 * selfeval.CROSS_FOLDS)
        assert not in_fold & who and all(crossed.of(user) is weights for user in in_fold)
    assert len(new_users) < learned.holdout["cold_users"] <= len(new_users | everyone)
    assert any("more were held out whole" in note for note in learned.notes)


def test_more_new_users_are_held_out_while_the_budget_lasts_and_only_where_few(monkeypatch):
    """Groups as large as the holdout's own new users, up to ``APART_GROUPS`` of them,
    none once the budget is spent (said in a note), and none where ``FEW_NEW_USERS`` new
    users were held out already."""
    from xo_recommender.engine import selfeval

    catalogue, events, users = site("interest", seed=3, n_users=300)
    split = temporal_split(events, fraction=0.2, seed=0)
    have = len(split.cold_targets)
    liked = np.ones(len(events), bool)
    params = replace(EngineParams(), ranking=None)

    def hold_apart(until, notes):
        return selfeval._new_users_apart(catalogue, events, users, split, liked, params,
                                         seed=0, until=until, fit_seconds=0.01,
                                         notes=notes, say=lambda _: None)

    notes = []
    groups = hold_apart(float("inf"), notes)
    assert len(groups) == selfeval.APART_GROUPS > 0 and not notes  # 300 users: 9 x ~27
    assert all(len(group.split.cold_targets) == have for group in groups)
    assert hold_apart(0.0, notes) == []
    assert notes == [f"time budget: 0 of {selfeval.APART_GROUPS} more groups of new users "
                     "held out whole"]
    monkeypatch.setattr(selfeval, "FEW_NEW_USERS", have + 1)
    assert len(hold_apart(float("inf"), [])) == selfeval.APART_GROUPS
    monkeypatch.setattr(selfeval, "FEW_NEW_USERS", have)
    assert hold_apart(float("inf"), []) == []


def test_many_users_learn_on_one_half_and_are_measured_on_the_other(monkeypatch):
    """From ``CROSS_FIT_BELOW`` held-out users on, one half learns and the other half,
    which taught nothing, is measured (four learnings would cost more than they tell)."""
    from xo_recommender.engine import selfeval

    monkeypatch.setattr(selfeval, "CROSS_FIT_BELOW", 0)
    fitted, measured = _spy_on_learning(monkeypatch)
    catalogue, events, users = site("interest", seed=3, n_users=300)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=200)
    learning = set().union(*(who for _, who, _ in fitted))
    assert [segment for segment, _, _ in fitted] == ["history", "cold"]  # each once
    weightings, reported = measured[-1]
    assert isinstance(weightings["history"], dict)
    assert reported["history"] and not set(reported["history"]) & learning
    assert reported["cold"] and not set(reported["cold"]) & learning
    assert learned.holdout["users"] > 0
    assert not any(f"learned {selfeval.CROSS_FOLDS} times" in note for note in learned.notes)

def test_listwise_samples_keep_each_rows_owner_through_a_subset():
    """A cross-fit leaves a user's own rows out by their owner: the owners stay aligned
    with the rows a sample keeps (a user with no target adds no row, and no owner)."""
    from xo_recommender.engine.ranker import ListwiseSamples

    samples = ListwiseSamples(names=("a",))
    values = {"a": np.arange(5, dtype=np.float32)}
    samples.add(values, np.array([0, 1, 2]), np.array([1]), owner=7)
    samples.add(values, np.array([0, 1, 2]), np.array([], np.int64), owner=8)  # no target
    samples.add(values, np.array([2, 3, 4]), np.array([4]), owner=9)
    assert samples.owners == [7, 9] and len(samples.rows) == 2
    kept = samples.subset(np.array([False, True]))
    assert kept.owners == [9] and kept.rows[0] is samples.rows[1]
    assert kept.targets[0].tolist() == [False, False, True]


def test_few_returning_users_cross_fit_while_many_new_users_learn_on_halves(monkeypatch):
    """The other way round (a site where most held-out users are new): returning users
    cross-fit, new users learn on one half and are measured on the other. A returning
    user's rows of the new-user ranking stay out of their own fold only: the new users
    measured are all of the other half, whose rows taught nothing."""
    from xo_recommender.engine import selfeval

    catalogue, events, users = site("interest", seed=3, n_users=300)
    split = temporal_split(events, fraction=0.2, cold_fraction=0.6, seed=0)
    assert len(split.targets) < 150 <= len(split.cold_targets)
    monkeypatch.setattr(selfeval, "CROSS_FIT_BELOW", 150)
    fitted, measured = _spy_on_learning(monkeypatch)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=200, cold_fraction=0.6)

    weightings, reported = measured[-1]
    (everybody_h, served_h), *folds_h = [(w, c) for seg, w, c in fitted if seg == "history"]
    cold = [(w, c) for seg, w, c in fitted if seg == "cold"]
    assert len(cold) == 1 and len(folds_h) == selfeval.CROSS_FOLDS  # new users: once
    learners_c, served_c = cold[0]
    assert weightings["cold"] is served_c is learned.candidates["cold"]
    new_reported = set(reported["cold"])
    assert new_reported and new_reported <= set(split.cold_targets)
    assert not new_reported & learners_c  # measured on the half that taught nothing
    crossed = weightings["history"]
    assert isinstance(crossed, selfeval.CrossFitted) and learned.candidates["history"] is served_h
    for fold, (who, weights) in enumerate(folds_h):
        in_fold = {u for u, f in crossed.fold_of.items() if f == fold}
        assert in_fold and not in_fold & who and who | in_fold >= everybody_h
        assert all(crossed.of(user) is weights for user in in_fold)
    assert set(reported["history"]) <= set(crossed.fold_of)
    assert learned.holdout["users"] > 0 and learned.holdout["cold_users"] > 0


def test_no_new_users_held_out_means_nothing_of_theirs_cross_fits(monkeypatch):
    """Zero held-out new users are not "few": nothing is learned three times for them,
    and no note says so."""
    from xo_recommender.engine import selfeval

    catalogue, events, users = site("interest", seed=3, n_users=300)
    monkeypatch.setattr(selfeval, "CROSS_FIT_BELOW", 100)
    fitted, _ = _spy_on_learning(monkeypatch)
    learned = learn_ranking(catalogue, events, users, EngineParams(), seed=0,
                            budget_seconds=30, max_users=200, cold_fraction=0.0)
    assert [segment for segment, _, _ in fitted] == ["history", "cold"]  # each once
    assert not any("learned 3 times" in note or "few" in note for note in learned.notes)
