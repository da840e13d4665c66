"""Every rebuild measures itself on the site's own data and learns how to rank.

``learn_ranking`` holds out each user's most recent discoveries (``holdout.py``; a
random share of them for offline files split at random, ``split_by``), trains
a model on what came before, and ranks the held-out businesses for two disjoint groups
of users: on the first it *learns* feature weights (``ranker.py``) for the learned
model and for each baseline alike; on the second it *reports* them all through the
served path (the same features, masks and time decay as a live request). Where the
held-out users of a group (with a history, or new) are few, every one of them learns
and is reported instead, each with weights learned without them (cross-fitting,
``_cross_fit``). A guardrail
then picks, for users with and without a history separately, the learned weights only
where they beat every baseline; otherwise that baseline's weights serve, so a site
never gets a ranking worse than "popular near you" on its own data. Nor one that only
looked better: any ranking displaces popular near you only by a lead, user by user,
beyond its standard error (``displaces``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from xo_recommender.engine import features, metrics
from xo_recommender.engine.blend import top_k
from xo_recommender.engine.data import Catalogue, Events, UserProfiles
from xo_recommender.engine.holdout import Holdout, new_users_apart, temporal_split
from xo_recommender.engine.ranker import (
    ListwiseSamples,
    candidate_indices,
    fit_listwise,
    refine_ndcg,
)

__all__ = ["BASELINES", "DEFAULT_RANKING", "SelfEvaluation", "learn_ranking"]

K = 10
D = features.DISTANCE_SCALES

#: Simple alternatives the learned model must beat: the features each may weigh
#: (their weights are fitted on the same users as the model's).
BASELINES: dict[str, tuple[str, ...]] = {
    "popular": ("popularity", "seen"),
    "popular_nearby": ("popularity", "popular_nearby", *D, "nearness", "seen"),
    "collaborative_only": ("collaborative", "seen"),
    "heuristic": ("interest", *D, "nearness", "popularity", "seen"),
}

#: The blend set by hand before rankings were learned (interest 0.3, proximity 0.25 at
#: a 10 km decay, prior 0.05), in feature terms: reported beside the others and used
#: when the data is too small to learn from.
HAND_SET: dict[str, float] = {
    "collaborative": 1.0, "profile": 0.15, "interest": 0.3, "near_10km": 0.25, "prior": 0.05,
}
#: A business the user already knows counts this much against it in a learned ranking's
#: starting points and in the hand-set blend as a fallback (the holdout's target is
#: discovery: a page of places they know already is not one).
SEEN_PENALTY = -10.0
DEFAULT_RANKING: dict[str, dict[str, float]] = {
    "history": dict(HAND_SET),
    "cold": {k: v for k, v in HAND_SET.items() if k in features.COLD_FEATURES},
}

#: Fewer users with a holdout than this: nothing is learned, the defaults serve.
MIN_USERS = 20
#: The learned model serves only when its NDCG@10 beats the best baseline's by this
#: share: where they measure the same, the simpler ranking is the safer one.
MARGIN = 0.01
#: The ranking a site is never served worse than, unless its holdout shows otherwise:
#: another serves in its place only by a lead beyond noise (``displaces``).
FLOOR = "popular_nearby"
#: How many standard errors of its mean per-user lead a ranking needs over ``FLOOR`` to
#: serve instead of it, in the spirit of the one-standard-error rule of model selection
#: (keep the simpler choice unless the evidence against it exceeds its standard error).
#: Two held the 32 new users of a 500-user site to the floor, though the learned ranking
#: led it by 11 % there (1.95 standard errors) and ranked them 6 % better on the next.
LEAD_SE = 1.0
#: The key of a segment's figures holding each measured user's NDCG@10 per ranking
#: (for the guardrail; never stored).
BY_USER = "ndcg_by_user"
#: Above this many users, the holdout draws this many at random: the weights need a few
#: thousand users, not a second full-size fit (at 200,000 users it costs ~1/4 of one).
MAX_HOLDOUT_USERS = 50_000
#: Users learned from and measured per group even past the time budget: fewer make the
#: weights and the guardrail a coin toss.
MIN_MEASURED = 200
#: The hyperparameters that shape the history signal, and the alternatives to the
#: defaults tried for each (one at a time, in this order, while the budget lasts): how
#: fast old interactions fade, and the collaborative model's L2 penalty (a multiple of
#: the mean Gram diagonal). Coarse steps: a finer one would not clear ``MARGIN``.
HYPERPARAMETERS: tuple[tuple[str, tuple], ...] = (
    ("half_life_days", (30.0, None)),
    ("l2_rel", (1.0, 16.0)),
)
#: Fewer held-out users of a segment (with a history, or new) than this: that segment's
#: weights are learned and measured by cross-fitting over ``CROSS_FOLDS`` folds of all
#: of them (``_cross_fit``), not on two halves. A few hundred users measure too roughly
#: to choose at a 1 % ``MARGIN`` (at 500 users one draw chose, on 25 new users, a
#: fallback that ranked new users 7 % worse than the heuristic), and half of them learn
#: weights worse than all do. For users with a history it costs about 2.2 times the
#: learning: at 1,500 held-out users most of the default ``TUNING_SECONDS``, and at 1,850
#: a cut measurement of 200 users, which is what it is meant to avoid; so only below
#: this. New users are a tenth of the held-out users and cost little to learn (no
#: history features): they cross-fit on sites several times larger (3 more fits of
#: theirs, about 5 s at 3,000 to 8,000 users).
CROSS_FIT_BELOW = 1000
CROSS_FOLDS = 3
#: Fewer new users held out than ``FEW_NEW_USERS`` (a tenth of a site of up to about
#: 2,000 users): more groups of as many users are held out whole, each ranked by an
#: evaluation model trained without them, until about ``NEW_USERS_WANTED`` new users are
#: measured and learned from (at most ``APART_GROUPS`` more groups; ``_new_users_apart``).
#: On the 50 new users of a 500-user site, a list that ranks new users 1.67× better than
#: popular nearby led it by 0.4 standard errors, and the floor served. From
#: ``MIN_MEASURED`` on the choice is no coin toss, and a group would cost a 3,000-user
#: site's learning 15 % more time for no gain measured there.
FEW_NEW_USERS = MIN_MEASURED
NEW_USERS_WANTED = 400
APART_GROUPS = 9
#: Learning users the hyperparameters are compared on (never the reporting half; when
#: cross-fitting, those they are measured on are left out of the guardrail's measure).
TUNING_USERS = 100
MIN_TUNING_USERS = 40
#: Metrics reported per ranking and segment.
METRICS = ("ndcg@10", "precision@10", "recall@10", "coverage")


@dataclass
class SelfEvaluation:
    """What the holdout decided and measured (stored in ``ModelVersion.metrics``)."""

    ranking: dict[str, dict[str, float]]
    serving: dict[str, str] = field(default_factory=dict)
    holdout: dict | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: segment -> name ("model", each baseline, "hand_set") -> weights that were compared
    candidates: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: Hyperparameters chosen on the holdout (only those that beat the defaults), and
    #: every value tried with the NDCG@10 it measured.
    hyperparameters: dict[str, object] = field(default_factory=dict)
    tried: dict[str, dict[str, float]] = field(default_factory=dict)
    #: segment -> the rankings that measured better than ``FLOOR`` there but within
    #: noise, so that the floor serves (said in ``guardrail_text``)
    within_noise: dict[str, list[str]] = field(default_factory=dict)

    def apply(self, params):
        """``params`` with the learned ranking and the chosen hyperparameters."""
        return replace(_tuned(params, self.hyperparameters), ranking=self.ranking)

    def as_metrics(self) -> dict:
        served = sorted(set(self.serving.values())) or ["defaults"]
        return {
            "holdout": self.holdout,
            "serving": served[0] if len(served) == 1 else
            ", ".join(f"{seg}: {name}" for seg, name in sorted(self.serving.items())),
            "serving_by_segment": dict(self.serving),
            "guardrail": self.guardrail_text(),
            "notes": list(self.notes),
            "tuning": {"seconds": round(self.seconds, 2), "weights": self.ranking,
                       "hyperparameters": dict(self.hyperparameters),
                       "tried": {k: dict(v) for k, v in self.tried.items()}},
        }

    def guardrail_text(self) -> str:
        if not self.serving:
            return "; ".join(self.notes) or "defaults: nothing to learn from"
        parts = []
        measured = (self.holdout or {}).get("model", {})
        for segment, name in sorted(self.serving.items()):
            who = _who(segment)
            if name == "model" and segment not in measured:  # nobody of it held out
                parts.append(f"{who}: the learned model (not measured: too few {who} "
                             "to hold out)")
            elif self.within_noise.get(segment):
                parts.append(f"{who}: {name} (" + ", ".join(self.within_noise[segment])
                             + " measured better, within noise)")
            else:
                parts.append(f"{who}: the learned model" if name == "model" else
                             f"{who}: {name} (the learned model did not beat it)")
        return "; ".join(parts)


def _tuned(params, chosen: Mapping[str, object]):
    """``params`` with the hyperparameters chosen on the holdout (``HYPERPARAMETERS``)."""
    changes: dict = {}
    if "half_life_days" in chosen:
        changes["half_life_days"] = chosen["half_life_days"]
    if "l2_rel" in chosen:
        changes["collaborative"] = {**params.collaborative, "l2_rel": chosen["l2_rel"]}
    return replace(params, **changes)


def _who(segment: str) -> str:
    return "users with a history" if segment == "history" else "new users"


class _UserContext:
    """Interests and home of each user, looked up by id."""

    def __init__(self, users: UserProfiles | None) -> None:
        users = users or UserProfiles.empty()
        self.index = users.lookup()
        self.users = users

    def interests(self, user_id: int) -> list[str]:
        i = self.index.get(user_id)
        return [] if i is None else list(self.users.interests[i] or [])

    def point(self, user_id: int) -> tuple[float, float] | None:
        i = self.index.get(user_id)
        if i is None:
            return None
        lat, lng = float(self.users.latitudes[i]), float(self.users.longitudes[i])
        return (lat, lng) if np.isfinite(lat) and np.isfinite(lng) else None


class Evaluator:
    """Everything a held-out user is ranked with, as a live request would be."""

    def __init__(self, model, split: Holdout, users: UserProfiles | None, now: float) -> None:
        self.model = model
        self.split = split
        self.ctx = _UserContext(users)
        self.history = _HistoryIndex(split.train)
        self.now = now
        self._distances: tuple[int | None, np.ndarray | None] = (None, None)

    def __call__(self, user_id: int, targets: np.ndarray, cold: bool):
        """(features of every business, candidate mask, target indices) for one user."""
        from xo_recommender.engine.model import Query

        model = self.model
        hist = None if cold else self.history.of(user_id)
        query = Query(history=hist, interests=self.ctx.interests(user_id),
                      location=self.ctx.point(user_id),
                      now=self.split.cutoffs.get(user_id, self.now))
        row = model.history_row(hist, query.now)
        mask = model.candidate_mask(query)
        point, _ = model.ranking_point(query, row)
        distances = None if point is None else model.locations.distances_km(*point)
        self._distances = (user_id, distances)
        values = features.compute(model, row, interests=query.interests,
                                  point=point, mask=mask, distances=distances)
        tidx = model.items.to_index(targets)
        tidx = np.unique(tidx[tidx >= 0])
        return values, mask, tidx

    def distances(self, user_id: int) -> np.ndarray | None:
        """Each business's km from the point ``user_id`` was ranked from (their home or
        usual place; None: neither), as served: kept from the user's call, so features
        and ranking share one pass."""
        if self._distances[0] != user_id:
            raise LookupError(f"user {user_id} was not prepared last")
        return self._distances[1]

    def within_reach(self, user_id: int, mask: np.ndarray) -> np.ndarray:
        """The candidates of ``mask`` a page ranks against each other: those within
        ``features.FAR_KM`` of where ``user_id`` was ranked from, when at least a page
        of them is (``within_reach_first`` puts the others after them all).

        Learning from these alone is learning what serving does: with businesses of
        other cities among the candidates, most sampled "negatives" are ones no page
        would show, and the weights learn to push another city down (which distance
        already does) instead of how to order the places within reach. (A page asked
        ``near`` another point, a diversified page or a page far down the list may
        show a business beyond reach; the first page of a plain request, the one
        measured and the one most seen, never does while a page of others is within.)
        """
        distances = self.distances(user_id)
        if distances is None:
            return mask
        near = mask & ~(distances > np.float32(features.FAR_KM))  # unknown: within
        return near if int(near.sum()) >= K else mask

    def sample(self, user_id: int, targets: np.ndarray, cold: bool,
               rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
        """(features, candidates, targets) of one held-out user to learn from: the
        businesses a page ranks together (``within_reach``) and the held-out ones among
        them (one beyond reach never reaches the first page, so it teaches nothing)."""
        values, mask, tidx = self(user_id, targets, cold)
        reach = self.within_reach(user_id, mask)
        return values, candidate_indices(values, reach, rng), tidx[reach[tidx]]

    def measure(self, weightings: Mapping[str, Mapping[str, Mapping[str, float]] | CrossFitted],
                *, users: Mapping[str, Sequence[int]] | None = None,
                max_users: int | None = None, deadline: float = float("inf"),
                notes: list[str] | None = None, apart: Sequence[Evaluator] = ()
                ) -> dict[str, dict | None]:
        """Metrics of each weighting for ``{"history": {...}, "cold": {...}}`` users
        (``users``: which held-out users per segment; default all, up to ``max_users``).
        ``apart``: evaluators of more new users (``_new_users_apart``), each ranked by
        their own."""
        notes = [] if notes is None else notes
        active = int(self.model.active.sum())
        new_users = _NewUsersPooled([self, *apart])
        out = {}
        for segment, targets, cold, prepare in (
                ("history", self.split.targets, False, self),
                ("cold", new_users.targets, True, new_users)):
            ids = list(users[segment]) if users is not None else sorted(targets)[:max_users]
            out[segment] = _measure(ids, targets, cold, prepare, self.model.n_items, active,
                                    weightings.get(segment, {}), deadline, notes)
        return out


class _HistoryIndex:
    """Each user's training rows, found by binary search over a sort by user."""

    def __init__(self, events: Events) -> None:
        self.order = np.argsort(np.asarray(events.user_ids), kind="stable")
        self.sorted_users = np.asarray(events.user_ids)[self.order]
        self.events = events

    def of(self, user_id: int) -> Events:
        lo = np.searchsorted(self.sorted_users, user_id, "left")
        hi = np.searchsorted(self.sorted_users, user_id, "right")
        return self.events.select(self.order[lo:hi])


def _without_a_home(user_ids, users: UserProfiles | None) -> int:
    """How many of ``user_ids`` have no home among ``users`` (an operator's clue to why
    distance weighs as it does)."""
    context = _UserContext(users)
    return sum(context.point(int(u)) is None for u in user_ids)


def _sample_users(events: Events, cap: int, rng: np.random.Generator
                  ) -> tuple[Events, int]:
    """All events of at most ``cap`` users drawn at random (and how many, if sampled)."""
    ids = np.unique(np.asarray(events.user_ids))
    if ids.size <= cap:
        return events, 0
    keep = rng.choice(ids, cap, replace=False)
    return events.select(np.isin(events.user_ids, keep)), cap


def _split_users(ids: Sequence[int], rng: np.random.Generator, cap: int
                 ) -> tuple[list[int], list[int]]:
    """Two disjoint halves (learn, report), each at most ``cap`` users."""
    ids = np.asarray(sorted(ids), dtype=np.int64)
    perm = rng.permutation(ids.size)
    half = ids.size // 2
    return ids[perm[:half]][:cap].tolist(), ids[perm[half:]][:cap].tolist()


def learn_ranking(
    catalogue: Catalogue,
    events: Events,
    users: UserProfiles | None,
    params,
    *,
    seed: int = 0,
    max_users: int = 2000,
    budget_seconds: float = 60.0,
    fraction: float = 0.2,
    cold_fraction: float = 0.1,
    max_holdout_users: int = MAX_HOLDOUT_USERS,
    progress: Callable[[str], None] | None = None,
    split_by: str = "time",
) -> SelfEvaluation:
    """Hold out, learn the ranking, measure it beside the baselines, apply the guardrail.

    ``params`` are the ``EngineParams`` training uses (its ``ranking`` is ignored here).
    ``split_by="random"`` holds out a random share of each user's businesses instead of
    their latest (``temporal_split``): for offline data whose test split was random.
    Returns the weights to serve and the figures; never raises for small or degenerate
    data (it says why in ``notes`` and returns ``DEFAULT_RANKING``).
    """
    from xo_recommender.engine.model import Recommender  # model imports us lazily

    say = progress or (lambda message: None)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    events, sampled = _sample_users(events, max_holdout_users, rng)
    liked = Recommender._type_weight_array(params, events) > 0
    if events.weights is not None:
        liked &= np.asarray(events.weights, np.float64) > 0
    split = temporal_split(events, fraction=fraction, cold_fraction=cold_fraction, seed=seed,
                           positive=liked, by=split_by)
    notes = list(split.notes)
    if sampled:
        notes.append(f"the holdout uses {sampled:,} users drawn at random "
                     f"(max_holdout_users), so it trains in a fraction of a full fit")
    times = events.first_seen if events.first_seen is not None else events.last_seen
    if split_by == "time" and len(events) and (
            times is None or float(np.ptp(np.nan_to_num(times))) == 0.0):
        notes.append("the interactions carry no spread of times, so there is no 'before' "
                     "to learn from: the default weights serve")
        return SelfEvaluation(ranking={k: dict(v) for k, v in DEFAULT_RANKING.items()},
                              notes=notes, seconds=time.perf_counter() - started)
    if catalogue.active is not None and len(catalogue) and not np.asarray(
            catalogue.active, bool).any():
        notes.append("no business is active, so there is nothing to rank: the default "
                     "weights serve")
        return SelfEvaluation(ranking={k: dict(v) for k, v in DEFAULT_RANKING.items()},
                              notes=notes, seconds=time.perf_counter() - started)
    if split.users < MIN_USERS:
        notes.append(f"only {split.users} users have enough history to hold out (at least "
                     f"{MIN_USERS} needed): the default weights serve")
        return SelfEvaluation(ranking={k: dict(v) for k, v in DEFAULT_RANKING.items()},
                              notes=notes, seconds=time.perf_counter() - started)

    located = catalogue.latitudes is not None and bool(
        np.isfinite(np.asarray(catalogue.latitudes, np.float64)).any())
    homeless = _without_a_home(split.targets, users) if located else 0
    if homeless:
        notes.append(f"{homeless:,} of {len(split.targets):,} users with a history gave no "
                     "home: they are ranked from where they usually go")
    say(f"Holdout: {split.users:,} users with a history, {split.cold_users:,} new users; "
        f"training the evaluation model on {len(split.train):,} interactions")
    train_times = split.train.last_seen
    now = float(np.max(train_times)) if train_times is not None and len(train_times) else 0.0
    fit_started = time.perf_counter()
    model = Recommender.fit(catalogue, split.train, replace(params, ranking=None), now=now)
    # The budget is for learning and measuring; the evaluation model's fit comes on top.
    begun = time.perf_counter()
    fit_seconds = begun - fit_started
    deadline = begun + max(budget_seconds, 1.0)
    learn_h, report_h = _split_users(list(split.targets), rng, max_users)
    learn_c, report_c = _split_users(list(split.cold_targets), rng, max_users)
    hyper, tried, model, judged = _tune_hyperparameters(
        catalogue, split, users, params, model, now, learn_h,
        tune_until=begun + 0.4 * (deadline - begun), fit_seconds=fit_seconds,
        seed=seed, notes=notes, say=say)
    prepare = Evaluator(model, split, users, now)

    crossed = {"history": 0 < len(split.targets) < CROSS_FIT_BELOW,
               "cold": 0 < len(split.cold_targets) < CROSS_FIT_BELOW}
    if crossed["history"]:  # both halves learn and are measured, still max_users at most
        learn_h, report_h = (learn_h + report_h)[:max_users], []
    if crossed["cold"]:
        learn_c, report_c = (learn_c + report_c)[:max_users], []
    samples_h = ListwiseSamples()
    samples_c = ListwiseSamples()
    tuned = time.perf_counter()  # the rest of the budget is shared as before
    learn_budget = tuned + 0.45 * (deadline - tuned)
    unreachable = 0
    for user_id in learn_h:
        if time.perf_counter() > learn_budget and len(samples_h) >= MIN_MEASURED:
            notes.append(f"time budget: learned from {len(samples_h)} of {len(learn_h)} users")
            break
        values, cand, tidx = prepare.sample(user_id, split.targets[user_id], False, rng)
        unreachable += not tidx.size
        samples_h.add(values, cand, tidx, owner=user_id)
        samples_c.add(values, cand, tidx, zero=features.HISTORY_FEATURES, owner=user_id)
    for user_id in learn_c:
        if time.perf_counter() > learn_budget and len(samples_c) >= MIN_MEASURED:
            break
        samples_c.add(*prepare.sample(user_id, split.cold_targets[user_id], True, rng),
                      owner=user_id)

    if unreachable:
        notes.append(f"{unreachable:,} learning users found nothing a first page could show "
                     f"(every held-out business closed, or over {features.FAR_KM:g} km from "
                     "where they are ranked from): nothing to learn from them")
    say(f"Learning weights from {len(samples_h):,} users")
    refine_until = tuned + 0.6 * (deadline - tuned)
    if any(crossed.values()):
        apart = _new_users_apart(
            catalogue, events, users, split, liked, replace(_tuned(params, hyper), ranking=None),
            seed=seed, until=refine_until, fit_seconds=fit_seconds, notes=notes,
            say=say) if crossed["cold"] else []
        rows_rng = np.random.default_rng([seed, 8])  # the other draws stay as they were
        for group in apart:  # new users held out whole teach new users' ranking too
            for user_id, targets in group.split.cold_targets.items():
                samples_c.add(*group.sample(user_id, targets, True, rows_rng), owner=user_id)
        report, candidates_h, candidates_c = _cross_fit(
            prepare, split, {"history": samples_h, "cold": samples_c},
            crossed=crossed, learners=[*learn_h, *learn_c],
            reporters={"history": report_h, "cold": report_c}, folds=CROSS_FOLDS,
            judged=judged, refine_until=refine_until, deadline=deadline, rng=rng,
            notes=notes, say=say, apart=apart)
    else:
        candidates_h = _fit_segment("history", samples_h, refine_until)
        candidates_c = _fit_segment("cold", samples_c, refine_until)
        say(f"Measuring on {len(report_h):,} + {len(report_c):,} other users")
        report = prepare.measure({"history": candidates_h, "cold": candidates_c},
                                 users={"history": report_h, "cold": report_c},
                                 deadline=deadline, notes=notes)
    ranking: dict[str, dict[str, float]] = {}
    serving: dict[str, str] = {}
    held: dict[str, list[str]] = {}
    learned_from = {"history": len(samples_h), "cold": len(samples_c)}
    for segment, candidates in (("history", candidates_h), ("cold", candidates_c)):
        choice = choose_serving(report[segment])
        if choice is None:  # nothing measured for this segment
            choice = "model" if learned_from[segment] else "defaults"
        else:
            held[segment] = within_noise(report[segment], choice)
            if held[segment]:
                notes.append(_floor_note(segment, report[segment], held[segment]))
        serving[segment] = choice
        ranking[segment] = dict(DEFAULT_RANKING[segment] if choice == "defaults"
                                else candidates[choice])
    return SelfEvaluation(ranking=ranking, serving=serving,
                          holdout=_holdout_table(report, learned_from), notes=notes,
                          seconds=time.perf_counter() - started,
                          candidates={"history": candidates_h, "cold": candidates_c},
                          hyperparameters=hyper, tried=tried,
                          within_noise={k: v for k, v in held.items() if v})


def _fit_segment(segment: str, samples: ListwiseSamples, refine_until: float
                 ) -> dict[str, dict[str, float]]:
    """The learned model's weights and every fallback's for one segment ("history" or
    "cold") from ``samples``: new users' rankings read only the features a user without
    a history has (a baseline left with none is not fitted)."""
    usable = features.COLD_FEATURES if segment == "cold" else features.FEATURES
    hand_set = DEFAULT_RANKING["cold"] if segment == "cold" else {**HAND_SET,
                                                                  "seen": SEEN_PENALTY}
    uses = {name: tuple(f for f in use if f in usable) for name, use in BASELINES.items()}
    baselines = {name: fit_listwise(samples, use) for name, use in uses.items() if use}
    return {"model": refine_ndcg(samples, fit_listwise(samples, usable), deadline=refine_until,
                                 starts=[*baselines.values(), hand_set]),
            **baselines, "hand_set": hand_set}


@dataclass
class CrossFitted:
    """Weightings learned once per fold: each user is ranked with those of their fold,
    learned without them (``Evaluator.measure`` takes one in place of a mapping)."""

    fold_of: Mapping[int, int]
    by_fold: Sequence[Mapping[str, Mapping[str, float]]]

    def of(self, user_id: int) -> Mapping[str, Mapping[str, float]]:
        return self.by_fold[self.fold_of[user_id]]


def _cross_fit(prepare: Evaluator, split: Holdout,
               samples: Mapping[str, ListwiseSamples], *,
               crossed: Mapping[str, bool], learners: Sequence[int],
               reporters: Mapping[str, Sequence[int]], folds: int, judged: set[int],
               refine_until: float, deadline: float, rng: np.random.Generator,
               notes: list[str], say: Callable[[str], None],
               apart: Sequence[Evaluator] = ()) -> tuple[dict[str, dict | None], dict, dict]:
    """For each ``crossed`` segment, learn on all its held-out users but one fold at a
    time, measure each fold with the weights learned on the others, then learn once more
    from everybody; a segment not crossed learns once and is measured on its
    ``reporters``, as on two halves.

    Why: with a few hundred held-out users, half of them (the usual reporting half)
    measures a ranking too roughly for a 1 % margin, and half of them learns weights
    worse than all of them would; here every user is measured (with weights that never
    saw them) and every user teaches the weights that serve. ``samples``: per segment,
    the learning rows, each with its owner (a returning user also teaches the new-user
    ranking, with their history hidden: where returning users learn on halves, those
    rows learn in every fold of it, since only new users are measured there; where
    they cross-fit too, each user's rows stay out of their own fold in both). Returns
    the pooled report and everybody's weights for users with a history and for new
    users. The users whose measure chose the hyperparameters (``judged``,
    ``_tune_hyperparameters``) learn but are not measured: the values were chosen for
    the learned model on them, so they would lean the guardrail towards it.

    ``apart``: more new users, each group held out of a model of its own
    (``_new_users_apart``); where new users cross-fit, they join the folds (keeping
    theirs where they have one) and are measured as the others are. Unlike the first
    group, they include users whose measure chose the hyperparameters: those were chosen
    on the ranking of these users' later discoveries as returning users; a new user's
    ranking reads them only through the popularity the half-life shapes (leaving them
    out would halve a 500-user site's groups)."""
    segments = [s for s in ("history", "cold") if crossed[s]]
    targets = {"history": split.targets, "cold": split.cold_targets}
    crossing = {u for u in learners if any(u in targets[s] for s in segments)}
    order = rng.permutation(sorted(crossing)).tolist()  # measured in this order
    fold_of = {u: i % folds for i, u in enumerate(order)}
    # New users held out apart join the folds (in their groups' random order) where they
    # are in none yet: each is measured with the weights of their fold, as the others.
    apart = list(apart) if crossed["cold"] else []
    more = [u for group in apart for u in group.split.cold_targets]
    for i, user in enumerate(u for u in more if u not in fold_of):
        fold_of[user] = i % folds
    # A user's rows are left out of their fold in every segment crossed; -1, a row of
    # nobody measured here (a returning user's, in the new-user ranking, while returning
    # users learn on halves), learns in every fold.
    fold = {s: np.array([fold_of.get(u, -1) for u in samples[s].owners], np.int64)
            for s in segments}
    # The weights that serve come first, each with the time it would have had on two
    # halves; the folds share what is left. (A fit's smooth part runs past any deadline:
    # with the folds first, at 8,000 users the served new-user weights got no coordinate
    # ascent. Out of time, a fold keeps the best of its smooth fit and the fallbacks'
    # weights, unrefined: that leans the guardrail towards the fallbacks, not away.)
    everybody = {s: _fit_segment(s, samples[s], refine_until) for s in ("history", "cold")}
    by_fold = []
    for f in range(folds):
        say(f"Cross-fitting: fold {f + 1} of {folds}")
        until = time.perf_counter() + (refine_until - time.perf_counter()) / (folds - f)
        by_fold.append({s: _fit_segment(s, samples[s].subset(fold[s] != f), until)
                        for s in segments})
    weightings: dict = {}
    measured: dict[str, list[int]] = {}
    for s in ("history", "cold"):
        if crossed[s]:
            weightings[s] = CrossFitted(fold_of, [fit[s] for fit in by_fold])
            measured[s] = [u for u in order if u in targets[s] and u not in judged]
        else:
            weightings[s], measured[s] = everybody[s], list(reporters[s])
    measured["cold"] += more
    say(f"Measuring on {len(measured['history']):,} + {len(measured['cold']):,} users"
        + (", each with the weights learned without them" if all(crossed.values()) else ""))
    report = prepare.measure(weightings, users=measured, deadline=deadline, notes=notes,
                             apart=apart)
    who = " and ".join(f"{len(measured[s]) - (len(more) if s == 'cold' else 0):,} "
                       f"{'returning' if s == 'history' else 'new'}" for s in segments)
    notes.append(f"{who} users held out are few: their weights were learned {folds} times, "
                 "each time without a share of them, each user measured with the weights "
                 "learned without them, and the weights that serve learned from all")
    if apart:
        groups = f"{len(apart)} groups, each" if len(apart) > 1 else "a group"
        notes.append(f"new users held out are few: {len(more):,} more were held out whole in "
                     f"{groups} from a model trained without them, and cross-fitted with "
                     "the others, so that new users' ranking is learned from and chosen on "
                     "more of them")
    return report, everybody["history"], everybody["cold"]


class _NewUsersPooled:
    """New users of several holdouts, each ranked by the evaluation model trained without
    them: what ``_measure`` asks of an ``Evaluator``, user by user."""

    def __init__(self, evaluators: Sequence[Evaluator]) -> None:
        self.evaluator_of = {u: e for e in evaluators for u in e.split.cold_targets}
        self.targets = {u: t for e in evaluators for u, t in e.split.cold_targets.items()}

    def __call__(self, user_id: int, targets: np.ndarray, cold: bool):
        return self.evaluator_of[user_id](user_id, targets, cold)

    def distances(self, user_id: int) -> np.ndarray | None:
        return self.evaluator_of[user_id].distances(user_id)


def _new_users_apart(catalogue, events: Events, users, split: Holdout, positive: np.ndarray,
                     params, *, seed: int, until: float, fit_seconds: float,
                     notes: list[str], say: Callable[[str], None]) -> list[Evaluator]:
    """Evaluators of more new users, where the holdout has fewer than ``FEW_NEW_USERS``:
    groups as large as its own group of new users, until about ``NEW_USERS_WANTED``,
    drawn from the others, each held out whole (``holdout.new_users_apart``) from a
    model fitted without it. A new user is someone the site knows nothing of yet, so
    any of its users, held out whole, is one (a returning user's later discoveries are
    not what a new user finds first: see docs/benchmarks.md); each group costs one fit
    of the evaluation model (0.01 s at 500 users, 0.2 s at 1,000). Stops, and says so,
    when another fit would run past ``until``.
    """
    from xo_recommender.engine.model import Recommender  # model imports us lazily

    have = len(split.cold_targets)
    if not have or have >= FEW_NEW_USERS:
        return []
    ids = np.unique(np.asarray(events.user_ids, np.int64)[np.asarray(positive, bool)])
    pool = np.random.default_rng([seed, 7]).permutation(
        np.setdiff1d(ids, np.fromiter(split.cold_targets, np.int64)))
    groups = min(APART_GROUPS, -(-(NEW_USERS_WANTED - have) // have), -(-pool.size // have))
    out: list[Evaluator] = []
    for g in range(groups):
        if time.perf_counter() + 1.5 * fit_seconds > until:
            notes.append(f"time budget: {g} of {groups} more groups of new users held "
                         "out whole")
            break
        say(f"Holding out more new users: group {g + 1} of {groups}")
        part = new_users_apart(events, pool[g * have:(g + 1) * have], positive=positive)
        times = part.train.last_seen
        now = float(np.max(times)) if times is not None and len(times) else 0.0
        out.append(Evaluator(Recommender.fit(catalogue, part.train, params, now=now),
                             part, users, now))
    return out


def _tune_hyperparameters(catalogue, split: Holdout, users, params, model, now: float,
                          learn_ids: Sequence[int], *, tune_until: float,
                          fit_seconds: float, seed: int, notes: list[str],
                          say: Callable[[str], None]):
    """Choose the values in ``HYPERPARAMETERS`` the same way as the weights.

    For each value: refit the evaluation model with it, learn weights (the smooth fit
    only) on ``TUNING_USERS`` learning users and measure them on as many others, all
    from the learning half (the reporting half stays unseen; when cross-fitting, the
    users measured here are not measured again). A value replaces the
    current one only where it beats it by ``MARGIN`` and by a lead, user by user,
    beyond noise (``beyond_noise``; on ml-100k's random holdout a 1.1 % lead of one L2
    penalty on 100 users ranked the test split 2.5 % worse). The L2 penalty is tried only
    where the collaborative score carries weight at all. Returns (chosen values,
    {name: {value: NDCG@10}}, the evaluation model fitted with the chosen values, the users
    whose measure chose them); stops,
    and says so, when another try would run past ``tune_until``.
    """
    from xo_recommender.engine.collaborative import CollaborativeModel
    from xo_recommender.engine.model import Recommender

    chosen: dict[str, object] = {}
    tried: dict[str, dict[str, float]] = {}
    n = min(TUNING_USERS, len(learn_ids) // 2)
    if n < MIN_TUNING_USERS:
        notes.append(f"half-life and L2 penalty kept at their defaults: {len(learn_ids)} "
                     f"learning users are too few to choose them")
        return chosen, tried, model, set()
    fit_ids, test_ids = learn_ids[:n], learn_ids[n:2 * n]

    def quick(candidate) -> tuple[float, dict[str, float], np.ndarray]:
        prepare = Evaluator(candidate, split, users, now)
        rng = np.random.default_rng(seed + 1)  # the same candidates for every value
        samples = ListwiseSamples()
        for user_id in fit_ids:
            samples.add(*prepare.sample(user_id, split.targets[user_id], False, rng))
        weights = fit_listwise(samples, features.FEATURES)
        figures = prepare.measure({"history": {"model": weights}},
                                  users={"history": test_ids, "cold": []})
        block = figures.get("history") or {}
        per_user = (block.get(BY_USER) or {}).get("model", np.zeros(0, np.float32))
        return float(block.get("model", {}).get("ndcg@10", 0.0)), weights, per_user

    def label(value) -> str:
        return "none" if value is None else f"{value:g}"

    if time.perf_counter() + 1.2 * fit_seconds > tune_until:
        notes.append("time budget: half-life and L2 penalty kept at their defaults (one "
                     f"more fit takes {fit_seconds:.0f} s; raise TUNING_SECONDS to try them)")
        return chosen, tried, model, set()
    started = time.perf_counter()
    best, weights, best_by_user = quick(model)
    one_try = fit_seconds + (time.perf_counter() - started)
    current = {"half_life_days": params.half_life_days,
               "l2_rel": float(params.collaborative.get("l2_rel", CollaborativeModel().l2_rel))}
    for name, values in HYPERPARAMETERS:
        tried[name] = {label(current[name]): round(best, 4)}
        if name == "l2_rel" and weights.get("collaborative", 0.0) <= 1e-6:
            notes.append("l2_rel kept: the learned ranking gives the collaborative score "
                         "no weight on this site")
            continue
        for value in values:
            if value == current[name]:
                continue
            if time.perf_counter() + 1.2 * one_try > tune_until:
                notes.append(f"time budget: {name} kept at {label(current[name])} "
                             f"(no time left to try {label(value)})")
                return chosen, tried, model, set(test_ids)
            say(f"Trying {name} = {label(value)}")
            trial = {**current, **chosen, name: value}
            candidate_params = replace(
                params, ranking=None, half_life_days=trial["half_life_days"],
                collaborative={**params.collaborative, "l2_rel": trial["l2_rel"]})
            candidate = Recommender.fit(catalogue, split.train, candidate_params, now=now)
            value_ndcg, value_weights, value_by_user = quick(candidate)
            tried[name][label(value)] = round(value_ndcg, 4)
            if value_ndcg <= best * (1.0 + MARGIN):
                continue
            if beyond_noise(value_by_user, best_by_user):
                best, weights, model, chosen[name] = value_ndcg, value_weights, candidate, value
                best_by_user = value_by_user
            else:
                notes.append(f"{name} kept at {label(chosen.get(name, current[name]))}: "
                             f"{label(value)} measured better, within noise")
    return chosen, tried, model, set(test_ids)


#: What the guardrail may serve instead of the learned model: the baselines, and the
#: hand-set blend that ranked before rankings were learned (never worse than before).
FALLBACKS = frozenset({*BASELINES, "hand_set"})


def choose_serving(figures: Mapping | None) -> str | None:
    """The guardrail: "model" when it beats by ``MARGIN`` every fallback that may serve,
    else the best of those fallbacks' names; None when nothing was measured.

    Where the figures carry each user's NDCG@10 (``BY_USER``), a ranking may serve in
    place of ``FLOOR`` (popular near you) only by a lead beyond its noise
    (``displaces``): on a few hundred users whose lists all read NDCG@10 near 0.03 (a
    host that knows nothing of its new users), one list "won" by 10 % and lost by 14 %
    on the next holdout. A fallback that does not displace the floor is no contender,
    for serving nor as the bar the model must clear.
    """
    if not figures or "model" not in figures:
        return None
    baselines = [n for n in figures if n in FALLBACKS]
    if not baselines:
        return "model"
    contenders = [n for n in baselines if displaces(figures, n)] or baselines
    best = max(contenders, key=lambda n: (figures[n]["ndcg@10"], n))
    if figures["model"]["ndcg@10"] > figures[best]["ndcg@10"] * (1.0 + MARGIN) and \
            displaces(figures, "model"):
        return "model"
    return best


def rankings(figures: Mapping) -> dict[str, dict]:
    """One segment's figures per ranking, without the user count and per-user values."""
    return {name: values for name, values in figures.items()
            if name not in ("users", BY_USER)}


def within_noise(figures: Mapping, choice: str) -> list[str]:
    """The rankings that measured better than ``FLOOR`` but did not lead it beyond noise,
    best first, when the floor serves (else none)."""
    if choice != FLOOR:
        return []
    floor = figures[FLOOR]["ndcg@10"]
    names = [n for n, values in rankings(figures).items()
             if values["ndcg@10"] > floor and not displaces(figures, n)]
    return sorted(names, key=lambda n: -figures[n]["ndcg@10"])


def _floor_note(segment: str, figures: Mapping, held: Sequence[str]) -> str:
    """The note saying that ``FLOOR`` serves although ``held`` measured better."""
    better = ", ".join(f"{n} measured NDCG@10 {figures[n]['ndcg@10']:.4f}" for n in held)
    return (f"{_who(segment)}: {FLOOR} serves; {better} against its "
            f"{figures[FLOOR]['ndcg@10']:.4f} on {figures['users']:,} users, a lead within "
            f"{LEAD_SE:g}× its standard error")


def beyond_noise(better: np.ndarray, than: np.ndarray) -> bool:
    """Whether the mean of ``better - than`` (each measured user's NDCG@10 under two
    rankings, in the same order) exceeds ``LEAD_SE`` standard errors of that mean; one
    user, or values that do not pair up, show no noise and so never do."""
    better, than = np.asarray(better, np.float64), np.asarray(than, np.float64)
    if better.size < 2 or better.size != than.size:
        return False
    lead = better - than
    return bool(lead.mean() > LEAD_SE * lead.std(ddof=1) / np.sqrt(lead.size))


def displaces(figures: Mapping, name: str) -> bool:
    """Whether ``name`` may serve in place of ``FLOOR``: it is the floor, or the floor
    was not measured per user, or its mean lead over the floor, user by user, exceeds
    ``LEAD_SE`` standard errors of that mean (one measured user shows no noise: the
    floor holds)."""
    by_user = figures.get(BY_USER)
    if name == FLOOR or not by_user or FLOOR not in by_user or name not in by_user:
        return True
    return beyond_noise(by_user[name], by_user[FLOOR])


def _measure(user_ids: Sequence[int], targets: Mapping[int, np.ndarray], cold: bool,
             prepare, n_items: int, n_active: int,
             candidates: Mapping[str, Mapping[str, float]] | CrossFitted, deadline: float,
             notes: list[str]) -> dict | None:
    """Rank every candidate weighting for each user as served; average the metrics
    (``CrossFitted``: each user with the weightings of their fold)."""
    if not user_ids:
        return None
    if isinstance(candidates, CrossFitted):
        weights_of, names = candidates.of, list(candidates.by_fold[0])
    else:
        weights_of, names = (lambda _user: candidates), list(candidates)
    sums = {name: np.zeros(3) for name in names}
    lists: dict[str, list[np.ndarray]] = {name: [] for name in names}
    by_user: dict[str, list[float]] = {name: [] for name in names}
    measured = 0
    for user_id in user_ids:
        if time.perf_counter() > deadline and measured >= MIN_MEASURED:
            notes.append(f"time budget: measured {measured} of {len(user_ids)} "
                         f"{'new' if cold else 'returning'} users")
            break
        values, mask, tidx = prepare(user_id, targets[user_id], cold)
        relevant = set(tidx.tolist())
        if not relevant:
            continue
        measured += 1
        distances = prepare.distances(user_id)
        for name, weights in weights_of(user_id).items():
            total = features.score(values, weights, n_items)
            if distances is not None:  # as served: what is within reach first
                total = features.within_reach_first(total, distances)
            total = np.where(mask, total, np.float32(-np.inf))
            top = top_k(total, K)
            lists[name].append(top)
            ndcg = metrics.ndcg_at_k(top, relevant, K)
            by_user[name].append(ndcg)
            sums[name] += (ndcg, metrics.precision_at_k(top, relevant, K),
                           metrics.recall_at_k(top, relevant, K))
    if not measured:
        return None
    out: dict = {"users": measured,
                 BY_USER: {name: np.asarray(v, np.float32) for name, v in by_user.items()}}
    for name in names:
        ndcg, precision, recall = sums[name] / measured
        out[name] = {"ndcg@10": round(float(ndcg), 4),
                     "precision@10": round(float(precision), 4),
                     "recall@10": round(float(recall), 4),
                     "coverage": round(metrics.catalog_coverage(lists[name], n_active), 4)}
    return out


def _holdout_table(report: Mapping[str, dict | None], learned_from: Mapping[str, int]
                   ) -> dict:
    """``{"model": {segment: figures}, "baselines": {name: {segment: figures}}, …}``."""
    table: dict = {"k": K, "users": 0, "cold_users": 0, "model": {}, "baselines": {},
                   "learned_from": dict(learned_from)}
    for segment, figures in report.items():
        if not figures:
            continue
        table["users" if segment == "history" else "cold_users"] = figures["users"]
        for name, values in rankings(figures).items():
            if name == "model":
                table["model"][segment] = values
            else:
                table["baselines"].setdefault(name, {})[segment] = values
    return table
