"""Businesses created since the active version was trained: read once in a while.

The active model knows the businesses of its training snapshot. The ones created since
(a higher primary key than any it knows) are read from the business view once per
process and version, and again when a business was created since (a counter in the
cache, bumped after the creating commit, read at each miss: one small read), or every
``REFRESH_SECONDS`` while the cache is down; a miss then usually costs no query for
them. ``engine.newcomers`` ranks them beside the model's own results. A new business
thus reaches the pages computed after it was created (cached pages keep theirs until
they are retired), and leaves this list at the next rebuild, which knows it.
"""

from __future__ import annotations

import threading
import time

from xo_recommender import cache, snapshot
from xo_recommender.engine.data import Catalogue

#: How long a process keeps its list of newcomers before reading it again when it cannot
#: tell whether a business was created since (the cache is down).
REFRESH_SECONDS = 30.0
#: However often businesses are created (a bulk import bumps the counter for each), a
#: process reads its list at most this often.
MIN_REREAD_SECONDS = 1.0
#: At most this many newcomers (the newest) take part; past it, rebuild.
MAX_NEWCOMERS = 2000

_lock = threading.Lock()
_cached: dict[object, tuple[float, Catalogue, object]] = {}


def newcomers(version_id: object, model) -> Catalogue:
    """The active businesses the model ``version_id`` does not know (newest first)."""
    now = time.monotonic()
    key = (version_id, float(model.trained_at))  # an id a test database may hand out again
    with _lock:
        hit = _cached.get(key)
    if hit is not None and now - hit[0] < min(MIN_REREAD_SECONDS, REFRESH_SECONDS):
        return hit[1]  # read this second: the counter is not asked (no round trip)
    generation = cache.newcomers_generation()
    if hit is not None and now - hit[0] < REFRESH_SECONDS and hit[2] == generation:
        return hit[1]
    known = model.items.ids
    after = int(known[-1]) if len(known) else None
    items = snapshot.load_catalogue(after_id=after, limit=MAX_NEWCOMERS, active_only=True)
    with _lock:
        _cached.clear()  # one version is active at a time
        _cached[key] = (now, items, generation)
    return items


def forget() -> None:
    """Drop this process's list (a business was created or changed here; tests)."""
    with _lock:
        _cached.clear()
