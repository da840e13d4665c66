"""The offline adapter learns on a holdout drawn as the data's own test split was."""

import numpy as np

from xo_recommender.engine.datasets import Interactions
from xo_recommender.engine.offline import TIME_SPLIT_SHARE, split_order


def interactions(rows):
    """rows: (user, item, time)."""
    u, i, t = (np.array(col) for col in zip(*rows, strict=True))
    return Interactions(u.astype(np.int64), i.astype(np.int64), np.ones(len(rows), np.float32),
                        t.astype(np.float64))


def test_test_rows_after_each_users_training_rows_are_a_split_by_time():
    train = interactions([(u, i, 10 * i) for u in range(10) for i in range(5)])
    test = interactions([(u, 9, 50 + u) for u in range(10)])
    assert split_order(train, test) == "time"


def test_test_rows_among_the_training_rows_are_a_random_split():
    train = interactions([(u, i, 10 * i) for u in range(10) for i in range(5)])
    test = interactions([(u, 9, 25) for u in range(10)])
    assert split_order(train, test) == "random"


def test_a_few_users_out_of_order_still_make_a_split_by_time():
    """Ties and clock skew: below ``1 - TIME_SPLIT_SHARE`` of the users, it is still time."""
    n = 100
    out_of_order = round((1 - TIME_SPLIT_SHARE) * n)
    train = interactions([(u, i, 10 * i) for u in range(n) for i in range(5)])
    test = interactions([(u, 9, 5 if u < out_of_order else 60) for u in range(n)])
    assert split_order(train, test) == "time"
    test = interactions([(u, 9, 5 if u <= out_of_order else 60) for u in range(n)])
    assert split_order(train, test) == "random"


def test_users_in_only_one_file_do_not_count():
    train = interactions([(u, i, 10 * i) for u in range(5) for i in range(5)])
    test = interactions([(u, 9, 60) for u in range(5)] + [(u, 9, 0) for u in range(50, 90)])
    assert split_order(train, test) == "time"
    assert split_order(train, interactions([(77, 1, 0)])) == "time"  # nobody in both


def test_files_without_a_spread_of_times_are_split_at_random():
    """No time to split by (every row at one instant, or none with a finite time): the
    learning holds out at random rather than learning nothing; a row without a finite
    time does not count."""
    same = interactions([(u, i, 0) for u in range(10) for i in range(5)])
    assert split_order(same, interactions([(u, 9, 0) for u in range(10)])) == "random"
    unknown = interactions([(u, i, float("nan")) for u in range(10) for i in range(5)])
    assert split_order(unknown, interactions([(u, 9, float("nan")) for u in range(10)])) \
        == "random"
    train = interactions([(u, i, 10 * i) for u in range(10) for i in range(5)]
                         + [(u, 7, float("nan")) for u in range(10)])
    assert split_order(train, interactions([(u, 9, 60) for u in range(10)])) == "time"
