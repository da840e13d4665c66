"""Plain-array inputs of the engine: the catalogue and the interaction events.

The Django side fills these from the database (``xo_recommender.snapshot``); the offline
evaluation fills them from files. Neither the engine nor these classes know which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The scale ratings are on; a value outside it is not a rating (0 often stands for
#: "none"; 100 is another scale's), and is taken as unknown.
RATING_SCALE = (1.0, 5.0)


def known_ratings(ratings) -> np.ndarray:
    """Ratings on ``RATING_SCALE``, NaN where unknown or outside it: one stray 100 must
    not raise the prior every other business is pulled towards."""
    r = np.asarray(ratings, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where((r >= RATING_SCALE[0]) & (r <= RATING_SCALE[1]), r, np.nan)


def known_popularity(popularity) -> np.ndarray:
    """Host popularity figures, 0 where not finite: an infinite one would flatten every
    other business's figure to nothing once scaled by the largest."""
    p = np.asarray(popularity, np.float64)
    return np.where(np.isfinite(p), p, 0.0)


@dataclass
class Catalogue:
    """The items (businesses), one entry per item in every array."""

    ids: np.ndarray  # int64, unique
    names: list[str]
    categories: list[list[str]]
    tags: list[list[str]] = field(default_factory=list)
    latitudes: np.ndarray | None = None  # float64, NaN where unknown
    longitudes: np.ndarray | None = None
    popularity: np.ndarray | None = None  # a host popularity figure, any scale
    ratings: np.ndarray | None = None  # on a 1..5 scale, NaN where unknown
    active: np.ndarray | None = None  # bool

    def __len__(self) -> int:
        return int(np.asarray(self.ids).shape[0])

    def sorted_by_id(self) -> Catalogue:
        """The same catalogue ordered by id, so item index order is id order."""
        ids = np.asarray(self.ids, dtype=np.int64)
        n = ids.shape[0]
        if np.unique(ids).shape[0] != n:
            raise ValueError("catalogue ids must be unique")
        order = np.argsort(ids, kind="stable")

        def arr(a, fill, dtype):
            return (np.full(n, fill, dtype=dtype) if a is None
                    else np.asarray(a, dtype=dtype))[order]

        def lists(values):
            values = values if values else [[] for _ in range(n)]
            return [list(values[i] or []) for i in order]

        return Catalogue(
            ids=ids[order],
            names=[str(self.names[i]) for i in order],
            categories=lists(self.categories),
            tags=lists(self.tags),
            latitudes=arr(self.latitudes, np.nan, np.float64),
            longitudes=arr(self.longitudes, np.nan, np.float64),
            popularity=known_popularity(arr(self.popularity, 0.0, np.float64)),
            ratings=known_ratings(arr(self.ratings, np.nan, np.float64)),
            active=arr(self.active, True, bool),
        )


@dataclass
class Events:
    """Interactions: one entry per (user, item, type) with its weight, count and time."""

    user_ids: np.ndarray  # int64
    item_ids: np.ndarray  # int64
    type_codes: np.ndarray  # int, index into ``types``
    types: tuple[str, ...]
    weights: np.ndarray | None = None  # the recorded weight (type weights apply on top)
    counts: np.ndarray | None = None
    last_seen: np.ndarray | None = None  # Unix seconds
    first_seen: np.ndarray | None = None  # Unix seconds: when the user found the item

    def __len__(self) -> int:
        return int(np.asarray(self.user_ids).shape[0])

    def of_user(self, user_id: int) -> Events:
        return self.select(np.asarray(self.user_ids) == user_id)

    def select(self, keep: np.ndarray) -> Events:
        """The events where the boolean mask (or index array) ``keep`` selects."""

        def pick(a):
            return None if a is None else np.asarray(a)[keep]

        return Events(pick(self.user_ids), pick(self.item_ids), pick(self.type_codes),
                      self.types, pick(self.weights), pick(self.counts), pick(self.last_seen),
                      pick(self.first_seen))

    @classmethod
    def empty(cls, types: tuple[str, ...]) -> Events:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, types, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))


@dataclass
class UserProfiles:
    """What the host knows of its users beyond interactions: stated interests and home.

    The learned ranking needs these for every user at training time (interest match and
    distance are features), and a new user is served from them alone.
    """

    ids: np.ndarray  # int64
    interests: list[list[str]]
    latitudes: np.ndarray  # float64, NaN where unknown
    longitudes: np.ndarray

    def __len__(self) -> int:
        return int(np.asarray(self.ids).shape[0])

    @classmethod
    def empty(cls) -> UserProfiles:
        return cls(np.zeros(0, np.int64), [], np.zeros(0), np.zeros(0))

    def lookup(self) -> dict[int, int]:
        return {int(u): i for i, u in enumerate(np.asarray(self.ids).tolist())}
