import numpy as np
import pytest

from tests.engine.synthetic import site
from xo_recommender.engine.data import Events
from xo_recommender.engine.holdout import new_users_apart, temporal_split

TYPES = ("view", "like", "save", "purchase", "share")


def events(rows):
    """rows: (user, item, type, count, first, last)."""
    u, i, t, c, f, la = (np.array(col) for col in zip(*rows, strict=True))
    return Events(u.astype(np.int64), i.astype(np.int64), t.astype(np.int64), TYPES,
                  np.ones(len(rows)), c.astype(float), la.astype(float), f.astype(float))


def test_latest_discoveries_are_held_out_and_the_rest_trains():
    rows = [(1, item, 0, 1, 100 * item, 100 * item) for item in range(1, 11)]
    split = temporal_split(events(rows), fraction=0.2, cold_fraction=0)
    assert sorted(split.targets[1].tolist()) == [9, 10]
    assert sorted(split.train.item_ids.tolist()) == list(range(1, 9))
    assert split.cutoffs[1] == 900


def test_a_random_holdout_holds_a_random_share_of_each_user_with_no_cut_in_time():
    """``by="random"``: the same share per user, drawn at random (not the latest), every
    other row trains whole (no cut, nothing clipped), and no held-out business trains."""
    rows = [(u, item, 0, 3, 100 * item, 100 * item + 50) for u in range(1, 41)
            for item in range(1, 11)]
    split = temporal_split(events(rows), fraction=0.2, cold_fraction=0, by="random")
    assert not split.cutoffs
    held = {u: sorted(items.tolist()) for u, items in split.targets.items()}
    assert len(held) == 40 and all(len(items) == 2 for items in held.values())
    assert sum(items == [9, 10] for items in held.values()) < 5  # not the latest
    assert len({tuple(items) for items in held.values()}) > 10  # drawn per user
    train = split.train
    assert len(train) == 40 * 8 and set(train.counts.tolist()) == {3.0}
    assert train.last_seen.max() == 1050  # no cut in time: a late row trains as it was
    for u, items in split.targets.items():
        assert not np.isin(train.item_ids[train.user_ids == u], items).any()
    again = temporal_split(events(rows), fraction=0.2, cold_fraction=0, by="random")
    assert all(np.array_equal(again.targets[u], split.targets[u]) for u in held)
    with pytest.raises(ValueError, match="by must be"):
        temporal_split(events(rows), by="latest")


def test_no_leak_from_the_future():
    """A row that went on after the cut keeps only what was known at the cut; a later
    like of a training business is dropped; held-out businesses never train."""
    rows = [(1, item, 0, 1, 100 * item, 100 * item) for item in range(1, 10)]
    rows[2] = (1, 3, 0, 7, 300, 5000)  # viewed item 3 again long after the cut...
    rows.append((1, 2, 1, 1, 950, 950))  # ...and liked item 2 after the cut
    rows.append((1, 10, 0, 1, 1000, 1000))
    split = temporal_split(events(rows), fraction=0.2, cold_fraction=0)
    cut = split.cutoffs[1]
    train = split.train
    assert np.all(train.first_seen <= cut) and np.all(train.last_seen <= cut)
    assert not np.isin(train.item_ids, split.targets[1]).any()
    clipped = (train.item_ids == 3)
    assert train.counts[clipped].tolist() == [1.0]
    assert not ((train.item_ids == 2) & (train.type_codes == 1)).any()


def test_changing_the_held_out_rows_changes_nothing_that_trains():
    catalogue, ev, _ = site("random", n_users=60, per_user=8)
    split = temporal_split(ev, seed=3, cold_fraction=0)
    held = np.zeros(len(ev), bool)
    for user, items in split.targets.items():
        held |= (ev.user_ids == user) & np.isin(ev.item_ids, items)
    changed = Events(ev.user_ids, ev.item_ids, ev.type_codes, ev.types, ev.weights,
                     np.where(held, 99.0, ev.counts), ev.last_seen, ev.first_seen)
    again = temporal_split(changed, seed=3, cold_fraction=0)
    for name in ("user_ids", "item_ids", "counts", "last_seen"):
        assert np.array_equal(getattr(split.train, name), getattr(again.train, name))


def test_users_with_few_businesses_stay_whole_and_new_users_are_held_out_whole():
    catalogue, ev, _ = site("random", n_users=400, per_user=6)
    few = Events(np.r_[ev.user_ids, [9999, 9999]], np.r_[ev.item_ids, [1, 2]],
                 np.r_[ev.type_codes, [0, 0]], ev.types, np.r_[ev.weights, [1, 1]],
                 np.r_[ev.counts, [1, 1]], np.r_[ev.last_seen, [5, 6]],
                 np.r_[ev.first_seen, [5, 6]])
    split = temporal_split(few, min_items=3, cold_fraction=0.1, seed=1)
    assert 9999 not in split.targets
    assert 20 <= split.cold_users <= 70
    for user in split.cold_targets:
        assert user not in split.targets
        assert not (split.train.user_ids == user).any()


def test_users_held_out_apart_leave_training_whole_and_others_stay_as_they_were():
    """``new_users_apart``: the users given are new users (none of their rows trains;
    every business they liked, and only those, is a target); everybody else's rows
    train whole, with no cut in time."""
    rows = [(1, 1, 0, 1, 10, 10), (1, 2, 1, 1, 20, 20), (1, 2, 0, 4, 15, 900),
            (2, 3, 0, 1, 30, 30), (2, 4, 0, 1, 40, 40), (3, 1, 0, 2, 50, 800)]
    positive = np.array([True, True, True, False, True, True])
    part = new_users_apart(events(rows), np.array([1, 2]), positive=positive)
    assert {u: sorted(t.tolist()) for u, t in part.cold_targets.items()} == {1: [1, 2], 2: [4]}
    assert not part.targets and not part.cutoffs
    assert part.train.user_ids.tolist() == [3] and part.train.last_seen.tolist() == [800]
    assert part.train.counts.tolist() == [2]  # nothing clipped
    everything = new_users_apart(events(rows), np.array([3]))
    assert list(everything.cold_targets) == [3] and len(everything.train) == 5


def test_all_interactions_at_one_instant_still_split_with_a_note():
    rows = [(u, i, 0, 1, 0, 0) for u in range(1, 30) for i in range(1, 6)]
    split = temporal_split(events(rows), cold_fraction=0)
    assert split.users == 29
    assert any("same time" in note for note in split.notes)
    assert len(split.train) == 29 * 4


def test_bad_fraction_is_refused():
    with pytest.raises(ValueError):
        temporal_split(events([(1, 1, 0, 1, 0, 0)]), fraction=1.5)


def test_only_what_users_liked_can_be_a_target():
    """A business the user hid (a type of negative weight) is never a target: a site
    must not be scored on how well it ranks what people rejected. It trains when it
    came before the cut."""
    rows = [(1, item, 0, 1, 100 * item, 100 * item) for item in range(1, 11)]
    rows[9] = (1, 10, 1, 1, 1000, 1000)  # the latest one was hidden (type 1 here)
    rows[3] = (1, 4, 1, 1, 400, 400)  # and an early one
    positive = np.array([r[2] != 1 for r in rows])
    split = temporal_split(events(rows), fraction=0.2, cold_fraction=0, positive=positive)
    assert sorted(split.targets[1].tolist()) == [8, 9]  # the last two liked ones
    assert sorted(split.train.item_ids.tolist()) == [1, 2, 3, 4, 5, 6, 7]
    nothing = temporal_split(events(rows), cold_fraction=0, positive=np.zeros(10, bool))
    assert not nothing.targets and any("positive weight" in n for n in nothing.notes)


def test_a_site_of_hides_only_keeps_the_default_ranking():
    from xo_recommender.engine.model import EngineParams
    from xo_recommender.engine.selfeval import DEFAULT_RANKING, learn_ranking

    catalogue, events_, users = site("interest", n_users=120, n_items=60, per_user=8)
    hides = Events(events_.user_ids, events_.item_ids, np.zeros(len(events_), np.int64),
                   ("hide",), events_.weights, events_.counts, events_.last_seen,
                   events_.first_seen)
    params = EngineParams(type_weights={"hide": -1.0})
    learned = learn_ranking(catalogue, hides, users, params, budget_seconds=5)
    assert learned.ranking == {k: dict(v) for k, v in DEFAULT_RANKING.items()}
    assert any("positive weight" in n for n in learned.notes)
