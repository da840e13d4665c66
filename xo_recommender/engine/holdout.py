"""Temporal holdout: what a site's own data says about how well a model ranks.

Per user, the businesses found most recently (about the last ``fraction`` of them, at
least one) are held out; the model is trained on what came before and asked to rank
them. The target is *discovery*: a held-out business is one the user had not
interacted with before the cut, because finding new places is what the site is for.
Users with fewer than ``min_items`` businesses stay whole in training; a share of the
users (``cold_fraction``) is held out whole, to measure what a brand-new user gets.

No leak from the future: a user's training rows are the rows that started before their
cut; a row that went on after it keeps only what is known at the cut (its last time
clipped to the cut, its repeat count back to one), and every held-out business is
absent from that user's training rows. Popularity, co-occurrence and ratings of the
evaluation model are computed from these training rows only.

``by="random"`` holds out a random share of each user's businesses instead, with no
cut in time: for data whose own test split was drawn that way (an offline benchmark's
files), so that what the ranking learns to find is what it will be asked to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xo_recommender.engine.data import Events

__all__ = ["Holdout", "new_users_apart", "temporal_split"]


@dataclass
class Holdout:
    """The training part and, per evaluated user, the businesses to be found."""

    train: Events
    #: user id -> held-out item ids (users with a history before their cut)
    targets: dict[int, np.ndarray]
    #: user id -> every item id of a user held out whole (no history at all)
    cold_targets: dict[int, np.ndarray]
    #: user id -> the time of the cut (Unix seconds; the training part ends here); empty
    #: for a random holdout (``by="random"``), which has no cut
    cutoffs: dict[int, float]
    #: why a part is missing or small, for the rebuild's output
    notes: list[str]

    @property
    def users(self) -> int:
        return len(self.targets)

    @property
    def cold_users(self) -> int:
        return len(self.cold_targets)


def _times(events: Events) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) time per row; files without times give zeros."""
    n = len(events)
    last = (np.zeros(n) if events.last_seen is None
            else np.nan_to_num(np.asarray(events.last_seen, np.float64), nan=0.0))
    first = last if events.first_seen is None else np.nan_to_num(
        np.asarray(events.first_seen, np.float64), nan=0.0)
    return np.minimum(first, last), last


def temporal_split(events: Events, *, fraction: float = 0.2, min_items: int = 3,
                   cold_fraction: float = 0.1, min_cold_users: int = 20,
                   seed: int = 0, positive: np.ndarray | None = None,
                   by: str = "time") -> Holdout:
    """Split ``events`` by time per user (see the module docstring; ``by="random"``: a
    random share of each user's businesses, no cut in time).

    ``positive``: per row, whether it says the user liked the place (a type of positive
    weight). Only a business with a positive row can be a target, so a site is never
    scored on how well it ranks what users hid; the others stay in training before the
    cut. None: every row is positive.
    """
    if not 0 < fraction < 1:
        raise ValueError("fraction must be between 0 and 1")
    if by not in ("time", "random"):
        raise ValueError('by must be "time" or "random"')
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    n = len(events)
    users = np.asarray(events.user_ids, np.int64)
    items = np.asarray(events.item_ids, np.int64)
    first, last = _times(events)
    if by == "random":
        notes.append("the holdout is a random share of each user's businesses, not their "
                     "latest: the data's own test split was drawn that way")
    elif n and float(first.max() - first.min()) == 0.0:
        notes.append("all interactions carry the same time: the holdout order is random")

    # One (user, item) pair per discovery: its earliest time, random among ties.
    tiebreak = rng.random(n)
    order = np.lexsort((tiebreak, first, items, users))
    u_s, i_s, t_s = users[order], items[order], first[order]
    pair_start = np.ones(n, bool)
    pair_start[1:] = (u_s[1:] != u_s[:-1]) | (i_s[1:] != i_s[:-1])
    pu, pi, pt = u_s[pair_start], i_s[pair_start], t_s[pair_start]
    pos = np.ones(pu.shape[0], bool)
    if positive is not None and n:  # a pair is positive when any of its rows is
        pos = np.logical_or.reduceat(np.asarray(positive, bool)[order],
                                     np.flatnonzero(pair_start))
    ptie = rng.random(pu.shape[0])
    if by == "random":  # each user's businesses in a random order: a random share is held
        pt = np.zeros_like(pt)
    by_user = np.lexsort((ptie, pt, pu))
    pu, pi, pt, pos = pu[by_user], pi[by_user], pt[by_user], pos[by_user]
    starts = np.flatnonzero(np.r_[True, pu[1:] != pu[:-1]]) if pu.size else np.zeros(0, int)
    ends = np.r_[starts[1:], pu.size].astype(np.int64)
    user_list = pu[starts]

    cold = np.zeros(user_list.shape[0], bool)
    if cold_fraction > 0 and user_list.shape[0] * cold_fraction >= min_cold_users:
        cold = rng.random(user_list.shape[0]) < cold_fraction
    elif cold_fraction > 0:
        notes.append(f"fewer than {min_cold_users / cold_fraction:.0f} users: no user is "
                     "held out whole, new users are not measured")

    targets: dict[int, np.ndarray] = {}
    cold_targets: dict[int, np.ndarray] = {}
    cutoffs: dict[int, float] = {}
    drop_user: set[int] = set()
    held_pairs_u: list[np.ndarray] = []
    held_pairs_i: list[np.ndarray] = []
    for k, u in enumerate(user_list.tolist()):
        s, e = int(starts[k]), int(ends[k])
        liked = s + np.flatnonzero(pos[s:e])  # the pairs that can be targets, by time
        if cold[k]:
            if liked.size:
                cold_targets[u] = pi[liked].copy()
            drop_user.add(u)
            continue
        if liked.size < min_items:
            continue
        n_hold = max(1, int(round(fraction * liked.size)))
        held = liked[-n_hold:]
        targets[u] = pi[held].copy()
        if by == "time":
            cutoffs[u] = float(pt[held[0]])
        held_pairs_u.append(np.full(n_hold, u, np.int64))
        held_pairs_i.append(pi[held])
    if positive is not None and n and not pos.any():
        notes.append("no interaction has a type of positive weight: nothing to learn "
                     "what users like from")
    if not targets:
        notes.append(f"no user has {min_items} or more businesses: nothing to hold out")

    # Training rows: not a held-out pair, not a dropped user, started before the cut.
    keep = np.ones(n, bool)
    if drop_user:
        keep &= ~np.isin(users, np.fromiter(drop_user, np.int64))
    if held_pairs_u:
        hu = np.concatenate(held_pairs_u)
        hi = np.concatenate(held_pairs_i)
        width = np.int64(max(int(items.max(initial=0)), int(hi.max(initial=0))) + 1)
        held_key = hu * width + hi
        keep &= ~np.isin(users * width + items, held_key)
    cut_of_row = np.full(n, np.inf)
    if cutoffs:
        cu = np.fromiter(cutoffs.keys(), np.int64)
        ct = np.fromiter(cutoffs.values(), np.float64)
        sorter = np.argsort(cu)
        pos = np.searchsorted(cu[sorter], users)
        pos = np.minimum(pos, cu.shape[0] - 1)
        found = cu[sorter][pos] == users
        cut_of_row[found] = ct[sorter][pos[found]]
    keep &= first <= cut_of_row  # ties at the cut were ordered into training above
    train = events.select(keep)
    clipped = last[keep] > cut_of_row[keep]
    if clipped.any():
        new_last = np.where(clipped, cut_of_row[keep], last[keep])
        train.last_seen = new_last
        if train.counts is not None:
            train.counts = np.where(clipped, 1, np.asarray(train.counts))
    return Holdout(train=train, targets=targets, cold_targets=cold_targets, cutoffs=cutoffs,
                   notes=notes)


def new_users_apart(events: Events, user_ids: np.ndarray, *,
                    positive: np.ndarray | None = None) -> Holdout:
    """``user_ids`` held out whole, as ``temporal_split`` holds out its new users: none
    of their rows in training, every business they have a positive row with a target.

    Everybody else's rows stay whole, with no cut in time: a new user arrives on a site
    that knows all that came before. For more new users to measure where a site has
    few (``selfeval``), each group with a model trained without it.
    """
    users = np.asarray(events.user_ids, np.int64)
    items = np.asarray(events.item_ids, np.int64)
    apart = np.isin(users, np.asarray(user_ids, np.int64))
    liked = apart if positive is None else apart & np.asarray(positive, bool)
    cold_targets: dict[int, np.ndarray] = {}
    if liked.any():
        order = np.lexsort((items[liked], users[liked]))
        lu, li = users[liked][order], items[liked][order]
        starts = np.flatnonzero(np.r_[True, lu[1:] != lu[:-1]])
        for user, chunk in zip(lu[starts].tolist(), np.split(li, starts[1:]), strict=True):
            cold_targets[user] = np.unique(chunk)
    return Holdout(train=events.select(~apart), targets={}, cold_targets=cold_targets,
                   cutoffs={}, notes=[])
