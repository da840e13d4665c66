"""What a user's unstated taste is worth, and how much of it their history reveals.

Half of ``seed_demo``'s users have one favourite category they never state; the engine
infers it from their history (``features.unstated_taste_by_category``, a posterior over
categories). This script learns and measures a world twice, as
``quality_seed_demo.py`` does: once as the engine serves, once with the generator's own
hidden taste put in place of that posterior, in learning and measuring alike (a
ranking no site could have: the ceiling of a perfect posterior). It prints returning
users' NDCG@10 of both by how many places the user has in training, and how often the
posterior's most likely category is the user's hidden one. It says where the learned
ranking's remaining distance to the oracle lies, and whether a better reading of the
history could close it.

    python benchmarks/taste_headroom.py                 # seed 42, 3,000 users
    python benchmarks/taste_headroom.py --seed 7
    python benchmarks/taste_headroom.py --smoke         # a small world, for CI
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

from xo_recommender.engine import features, metrics, selfeval  # noqa: E402
from xo_recommender.engine.blend import top_k  # noqa: E402
from xo_recommender.engine.content import normalise_term  # noqa: E402
from xo_recommender.engine.holdout import temporal_split  # noqa: E402
from xo_recommender.engine.model import EngineParams, Recommender  # noqa: E402

#: Places in a user's training history, as row groups of the table.
BUCKETS = ((1, 5), (5, 8), (8, 12), (12, 20), (20, 40), (40, None))


class _Current:
    """The held-out user being prepared, so the taste hook knows whose it is."""

    user_id: int | None = None
    model = None


@contextlib.contextmanager
def _watched(record: dict, truth: dict | None):
    """While inside: every user's taste posterior is recorded in ``record``; with
    ``truth`` (user id -> hidden category name or None) the posterior is replaced by it."""
    original_call = selfeval.Evaluator.__call__
    original_taste = features.unstated_taste_by_category

    def call(self, user_id, targets, cold):
        _Current.user_id, _Current.model = user_id, self.model
        return original_call(self, user_id, targets, cold)

    def taste(categories, row, base, stated):
        if truth is None:
            out = original_taste(categories, row, base, stated)
        else:
            out = np.zeros(categories.shape[1], np.float32)
            hidden = truth.get(_Current.user_id)
            column = None if hidden is None else \
                _Current.model._category_column.get(normalise_term(hidden))
            if column is not None:
                out[column] = 1.0
        record[_Current.user_id] = out
        return out

    selfeval.Evaluator.__call__ = call
    features.unstated_taste_by_category = taste
    try:
        yield
    finally:
        selfeval.Evaluator.__call__ = original_call
        features.unstated_taste_by_category = original_taste


def hidden_tastes(users) -> dict[int, str | None]:
    """User id -> the category they prefer but never stated (None: they have none)."""
    names = [c.name for c in qsd.demo_data.CATEGORIES]
    out = {}
    for i, interests in enumerate(users.interests):
        bits = int(users.pref_bits[i])
        unstated = [c for c in range(len(names)) if bits >> c & 1 and names[c] not in interests]
        out[i + 1] = names[unstated[0]] if unstated else None
    return out


def per_user(seed, n_users, n_biz, n_inter, budget, truth):
    """(user id -> (NDCG@10 as served, places in training), user id -> the taste vector
    the served model saw, the category columns, seconds)."""
    catalogue, events, profiles = qsd.world(seed, n_users, n_biz, n_inter)
    outer = temporal_split(events, fraction=0.2, seed=seed + 1)
    record: dict = {}
    started = time.perf_counter()
    with _watched(record, truth):
        params = EngineParams()
        learned = selfeval.learn_ranking(catalogue, outer.train, profiles, params, seed=seed,
                                         budget_seconds=budget)
        now = float(np.max(outer.train.last_seen))
        served = Recommender.fit(catalogue, outer.train, learned.apply(params), now=now)
        evaluator = selfeval.Evaluator(served, outer, profiles, now)
        weights = learned.ranking["history"]
        record.clear()  # what the served model saw, not the learning
        scores = {}
        for user_id, targets in sorted(outer.targets.items()):
            values, mask, tidx = evaluator(user_id, targets, False)
            if not tidx.size:
                continue
            total = features.score(values, weights, served.n_items)
            distances = evaluator.distances(user_id)
            if distances is not None:
                total = features.within_reach_first(total, distances)
            ranked = top_k(np.where(mask, total, -np.inf), 10)
            scores[user_id] = metrics.ndcg_at_k(ranked, set(tidx.tolist()), 10)
        columns = served._category_column
    places = _places(outer.train)
    return ({u: (s, places.get(u, 0)) for u, s in scores.items()},
            {u: record.get(u) for u in scores}, columns, time.perf_counter() - started)


def _places(events) -> dict[int, int]:
    """User id -> how many distinct businesses they have in ``events``."""
    pairs = np.unique(np.stack([np.asarray(events.user_ids), np.asarray(events.item_ids)]),
                      axis=1)
    users, counts = np.unique(pairs[0], return_counts=True)
    return dict(zip(users.tolist(), counts.tolist(), strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--businesses", type=int, default=2000)
    parser.add_argument("--interactions", type=int, default=60_000)
    parser.add_argument("--budget", type=float, default=45.0, help="TUNING_SECONDS")
    args = parser.parse_args()
    world = ((args.seed, 300, 200, 6_000) if args.smoke
             else (args.seed, args.users, args.businesses, args.interactions))
    budget = 5.0 if args.smoke else args.budget
    users = qsd.seed_demo.generate_users(world[1], world[0],
                                         qsd.seed_demo.city_count(world[2]))
    truth = hidden_tastes(users)
    served, posterior, columns, s1 = per_user(*world, budget, None)
    known, _, _, s2 = per_user(*world, budget, truth)
    print(f"## seed {world[0]}: {world[1]:,} users, {world[2]:,} businesses, {world[3]:,} "
          f"interactions (learned and measured in {s1:.0f} s and {s2:.0f} s)\n")
    print("| places in training | unstated taste | users | NDCG@10 served | with the true "
          "taste | posterior's top category is it | posterior on it |")
    print("|---|---|---|---|---|---|---|")
    users_all = sorted(served)
    for lo, hi in BUCKETS:
        for has in (True, False):
            group = [u for u in users_all if served[u][1] >= lo
                     and (hi is None or served[u][1] < hi) and (truth[u] is not None) == has]
            if not group:
                continue
            a = np.mean([served[u][0] for u in group])
            b = np.mean([known[u][0] for u in group])
            hit = mass = "—"
            if has:
                found, on = [], []
                for u in group:
                    column = columns.get(normalise_term(truth[u]))
                    p = posterior.get(u)
                    if p is None or column is None:
                        found.append(False)
                        on.append(0.0)
                        continue
                    found.append(bool(p.max() > 0 and int(np.argmax(p)) == column))
                    on.append(float(p[column]))
                hit, mass = f"{np.mean(found):.0%}", f"{np.mean(on):.2f}"
            label = f"{lo}–{hi - 1}" if hi is not None else f"{lo}+"
            print(f"| {label} | {'yes' if has else 'none'} | {len(group)} | {a:.4f} | "
                  f"{b:.4f} | {hit} | {mass} |")
    a = np.mean([served[u][0] for u in users_all])
    b = np.mean([known[u][0] for u in users_all])
    print(f"| all | | {len(users_all)} | **{a:.4f}** | **{b:.4f}** | | |")
    print(f"\nthe true taste would add {b - a:+.4f} NDCG@10 ({b / max(a, 1e-9):.3f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
