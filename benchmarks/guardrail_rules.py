"""Which guardrail rule serves best on the next holdout: the rule as shipped beside others.

The guardrail (``selfeval.choose_serving``) picks, per segment, what serves: the learned
ranking, a baseline or the hand-set blend, from each ranking's NDCG@10 on the learning's
own holdout; popular nearby (``FLOOR``) serves unless another leads it by more than
``LEAD_SE`` standard errors user by user. This script learns each world once, keeps the
guardrail's inputs (each measured user's NDCG@10 per ranking), measures every ranking on
the outer holdout, and then asks the real ``choose_serving`` again under each rule (its
``FLOOR`` and ``LEAD_SE`` set for the call): what each rule would have served and that
ranking's NDCG@10 over the best baseline's on the outer holdout, as
``quality_seed_demo.py`` reports it. One learning serves every rule, so the rules differ
by their choice alone.

    python benchmarks/guardrail_rules.py                # small and hidden-home worlds
    python benchmarks/guardrail_rules.py --worlds "7,500,200,10000,homes,1;42,3000,2000,60000"
    python benchmarks/guardrail_rules.py --new-users 2000   # new users judged on 2,000 more
    python benchmarks/guardrail_rules.py --smoke        # one small world, for CI

A world is ``seed,users,businesses,interactions[,hide[,learner seed]]``; ``hide`` is
``homes``, ``interests`` or ``homes+interests`` (what the host does not know).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_seed_demo as qsd  # noqa: E402  (sets up Django and the import path)

from xo_recommender.engine import selfeval  # noqa: E402
from xo_recommender.engine.holdout import new_users_apart, temporal_split  # noqa: E402
from xo_recommender.engine.model import EngineParams, Recommender  # noqa: E402

#: (name, floor, standard errors a lead needs): the shipped rule first.
RULES = (
    ("shipped: popular nearby, 1 SE", "popular_nearby", 1.0),
    ("popular nearby, 0.5 SE", "popular_nearby", 0.5),
    ("popular nearby, 1.75 SE", "popular_nearby", 1.75),
    ("no floor (best mean)", "popular_nearby", -1e9),
    ("heuristic, 1 SE", "heuristic", 1.0),
)
#: Small sites (few new users to judge on) and hosts that know no homes, where the
#: choice is closest; each with three draws of the learner.
DEFAULT_WORLDS = tuple(
    f"{seed},500,200,10000,{hide},{draw}"
    for seed in (42, 7, 123) for hide in ("", "homes", "homes+interests")
    for draw in (seed, 1, 2))
SMOKE_WORLDS = ("42,400,200,8000,,42",)


@contextlib.contextmanager
def _recording(inputs: list):
    """While inside, every figures mapping the guardrail is given is kept in ``inputs``."""
    original = selfeval.choose_serving

    def spy(figures):
        inputs.append(figures)
        return original(figures)

    selfeval.choose_serving = spy
    try:
        yield
    finally:
        selfeval.choose_serving = original


@contextlib.contextmanager
def _rule(floor: str, lead_se: float):
    """The guardrail's floor and threshold set to a rule's, while inside."""
    saved = selfeval.FLOOR, selfeval.LEAD_SE
    selfeval.FLOOR, selfeval.LEAD_SE = floor, lead_se
    try:
        yield
    finally:
        selfeval.FLOOR, selfeval.LEAD_SE = saved


def parse_world(text: str) -> tuple:
    parts = text.split(",") + [""] * 6
    seed, users, businesses, interactions = (int(p) for p in parts[:4])
    hide = frozenset(h for h in parts[4].split("+") if h)
    draw = int(parts[5]) if parts[5] else seed
    return seed, users, businesses, interactions, hide, draw


def run_world(seed: int, users: int, businesses: int, interactions: int,
              hide: frozenset[str], draw: int, budget: float, new_users: int = 0
              ) -> dict[str, dict]:
    """Per segment: the guardrail's inputs and every ranking's outer NDCG@10.

    ``new_users``: measure new users' rankings on this many more people of the same
    world (the generator's own users past the site's, their interactions drawn at the
    same rate), whom the site never saw, instead of on the tenth of its users held out:
    a 500-user site holds out about 50 new users, too few to tell which choice was
    right. The generator then draws every interaction anew (the site's users and
    businesses are the same, their interactions another draw), and the site holds none
    of its users out whole, so its returning users' figures are not those of a run
    without it; compare runs of one mode."""
    more = users + new_users
    catalogue, events, profiles = qsd.world(seed, more, businesses,
                                            round(interactions * more / users), hide=hide)
    site = np.asarray(events.user_ids) <= users
    # With new users of its own, the site holds none of its users out whole.
    outer = temporal_split(events.select(site), fraction=0.2, seed=seed + 1,
                           cold_fraction=0.0 if new_users else 0.1)
    if new_users:
        outer.cold_targets = new_users_apart(events, np.arange(users + 1, more + 1)
                                             ).cold_targets
    params = EngineParams()
    inputs: list = []
    with _recording(inputs):
        learned = selfeval.learn_ranking(catalogue, outer.train, profiles, params, seed=draw,
                                         budget_seconds=budget)
    now = float(np.max(outer.train.last_seen))
    served = Recommender.fit(catalogue, outer.train, learned.apply(params), now=now)
    evaluator = selfeval.Evaluator(served, outer, profiles, now)
    measured = evaluator.measure({s: dict(learned.candidates[s]) for s in ("history", "cold")})
    out = {}
    for segment, figures in zip(("history", "cold"), inputs, strict=False):
        if figures and measured.get(segment):
            out[segment] = {"inner": figures, "outer": selfeval.rankings(measured[segment])}
    return out


def judge(segment: dict) -> dict[str, tuple[str, float]]:
    """Each rule's choice and its outer NDCG@10 over the best baseline's."""
    outer = segment["outer"]
    best = max(outer[n]["ndcg@10"] for n in outer if n in selfeval.BASELINES)
    verdicts = {}
    for name, floor, lead_se in RULES:
        with _rule(floor if floor in segment["inner"] else selfeval.FLOOR, lead_se):
            choice = selfeval.choose_serving(segment["inner"])
        verdicts[name] = (choice, outer[choice]["ndcg@10"] / max(best, 1e-9))
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--worlds", help="';'-separated worlds (see the module docstring)")
    parser.add_argument("--budget", type=float, default=120.0, help="TUNING_SECONDS")
    parser.add_argument("--new-users", type=int, default=0,
                        help="measure new users on this many more users of each world")
    args = parser.parse_args()
    worlds = (SMOKE_WORLDS if args.smoke
              else args.worlds.split(";") if args.worlds else DEFAULT_WORLDS)
    budget = 10.0 if args.smoke else args.budget
    names = [name for name, _, _ in RULES]
    print("| world (seed, users, hidden, learner draw) | segment | users judged | "
          + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    ratios: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    # the smoke runs its world both ways
    runs = [(text, 0) for text in worlds] + [(text, 200) for text in worlds] if args.smoke \
        else [(text, args.new_users) for text in worlds]
    for text, new_users in runs:
        seed, users, businesses, interactions, hide, draw = parse_world(text)
        result = run_world(seed, users, businesses, interactions, hide, draw, budget,
                           new_users)
        for segment, figures in result.items():
            verdicts = judge(figures)
            for name, (_, ratio) in verdicts.items():
                ratios[name].append(ratio)
            cells = [f"{choice} {ratio:.3f}" for choice, ratio in verdicts.values()]
            more = f" (+{new_users:,} new users)" if new_users else ""
            print(f"| {seed}, {users:,}, {'+'.join(sorted(hide)) or '—'}, {draw}{more} | "
                  f"{segment} | {figures['inner']['users']} | " + " | ".join(cells) + " |",
                  flush=True)
    print(f"\n{sum(len(v) for v in ratios.values()) // len(names)} choices in "
          f"{time.perf_counter() - started:.0f} s; each rule's outer NDCG@10 over the best "
          "baseline's:\n")
    print("| rule | mean | lowest | below 1.0 |\n|---|---|---|---|")
    for name, values in ratios.items():
        print(f"| {name} | {np.mean(values):.4f} | {min(values):.3f} | "
              f"{sum(v < 0.999 for v in values)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
