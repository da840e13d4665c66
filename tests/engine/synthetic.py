"""Small synthetic sites for the learned-ranking tests: one signal drives every choice.

A site has users with a home and stated interests, businesses with one category and a
place, and interactions drawn from a choice model of the test's choosing, so a test
can say which feature *should* win and check that the learned ranking finds it.
"""

from __future__ import annotations

import numpy as np

from xo_recommender.engine.data import Catalogue, Events, UserProfiles

CATEGORIES = ("cafe", "barber", "books", "gym", "bakery", "florist", "tailor", "tacos")
DAY = 86_400.0


def site(driver: str, *, n_users: int = 400, n_items: int = 160, per_user: int = 12,
         seed: int = 0) -> tuple[Catalogue, Events, UserProfiles]:
    """``driver``: "distance", "interest", "popularity" or "random"."""
    rng = np.random.default_rng(seed)
    item_xy = rng.uniform(0, 30, (n_items, 2))  # km
    user_xy = rng.uniform(0, 30, (n_users, 2))
    item_cat = rng.integers(0, len(CATEGORIES), n_items)
    quality = rng.standard_normal(n_items)
    interests = [list(rng.choice(len(CATEGORIES), 2, replace=False)) for _ in range(n_users)]
    users, items, times = [], [], []
    for u in range(n_users):
        d = np.hypot(*(item_xy - user_xy[u]).T)
        if driver == "distance":
            logits = -d / 2.0
        elif driver == "interest":
            logits = np.where(np.isin(item_cat, interests[u]), 4.0, 0.0)
        elif driver == "popularity":
            logits = 2.5 * quality
        else:
            logits = np.zeros(n_items)
        keys = logits - np.log(rng.standard_exponential(n_items))
        chosen = np.argsort(-keys)[:per_user]
        users += [u + 1] * per_user
        items += (chosen + 1).tolist()
        times += (1_700_000_000 + rng.uniform(0, 90 * DAY, per_user)).tolist()
    lat0, km_per_deg = 33.75, 111.0
    catalogue = Catalogue(
        ids=np.arange(1, n_items + 1), names=[f"place {i}" for i in range(1, n_items + 1)],
        categories=[[CATEGORIES[c]] for c in item_cat], tags=[[] for _ in range(n_items)],
        latitudes=lat0 + item_xy[:, 1] / km_per_deg,
        longitudes=-84.39 + item_xy[:, 0] / (km_per_deg * np.cos(np.radians(lat0))),
        popularity=np.zeros(n_items), ratings=np.full(n_items, np.nan),
        active=np.ones(n_items, bool),
    )
    n = len(users)
    t = np.asarray(times)
    events = Events(user_ids=np.asarray(users, np.int64), item_ids=np.asarray(items, np.int64),
                    type_codes=np.zeros(n, np.int64), types=("view",), weights=np.ones(n),
                    counts=np.ones(n), last_seen=t, first_seen=t)
    profiles = UserProfiles(
        ids=np.arange(1, n_users + 1),
        interests=[[CATEGORIES[c] for c in ints] for ints in interests],
        latitudes=lat0 + user_xy[:, 1] / km_per_deg,
        longitudes=-84.39 + user_xy[:, 0] / (km_per_deg * np.cos(np.radians(lat0))),
    )
    return catalogue, events, profiles


def drifting_site(*, n_users: int = 300, per_category: int = 20, seed: int = 0
                  ) -> tuple[Catalogue, Events, UserProfiles]:
    """Users whose taste moved: a dozen places of one category four months ago, then
    eight of another in the last month (no stated interests, no homes). Only a history
    that lets old interactions fade fast predicts where they go next."""
    rng = np.random.default_rng(seed)
    n_items = per_category * len(CATEGORIES)
    item_cat = np.repeat(np.arange(len(CATEGORIES)), per_category)
    now = 1_700_000_000 + 365 * DAY
    users, items, times = [], [], []
    for u in range(n_users):
        old, new = rng.choice(len(CATEGORIES), 2, replace=False)
        for category, count, (lo, hi) in ((old, 12, (150, 100)), (new, 8, (30, 1))):
            chosen = rng.choice(np.flatnonzero(item_cat == category), count, replace=False)
            users += [u + 1] * count
            items += (chosen + 1).tolist()
            times += (now - rng.uniform(hi, lo, count) * DAY).tolist()
    catalogue = Catalogue(
        ids=np.arange(1, n_items + 1), names=[f"place {i}" for i in range(1, n_items + 1)],
        categories=[[CATEGORIES[c]] for c in item_cat], tags=[[] for _ in range(n_items)],
        latitudes=np.full(n_items, np.nan), longitudes=np.full(n_items, np.nan),
        popularity=np.zeros(n_items), ratings=np.full(n_items, np.nan),
        active=np.ones(n_items, bool),
    )
    n, t = len(users), np.asarray(times)
    events = Events(user_ids=np.asarray(users, np.int64), item_ids=np.asarray(items, np.int64),
                    type_codes=np.zeros(n, np.int64), types=("view",), weights=np.ones(n),
                    counts=np.ones(n), last_seen=t, first_seen=t)
    profiles = UserProfiles(ids=np.arange(1, n_users + 1), interests=[[] for _ in range(n_users)],
                            latitudes=np.full(n_users, np.nan),
                            longitudes=np.full(n_users, np.nan))
    return catalogue, events, profiles
