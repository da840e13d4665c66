"""``manage.py seed_demo``: fill the example project with realistic XO Black-like data.

The interactions come from a generative model, so a recommender has real structure to
find: each user prefers businesses that match their interests (plus one unstated
"hidden" taste only collaborative filtering can discover), that are near home (distance
decay) and that are good (a latent quality drives ``rating``, ``popularity_score`` and
the choice probability alike). Activity per user is long-tailed; types follow a
realistic mix (every engaged business is viewed; likes, saves, purchases and shares
are rarer and more likely for good, matching businesses).

Re-running is safe: users, businesses and categories have deterministic keys
(``demo_user_000042``, ``demo-000042``, the category slug) and every insert skips rows
that exist, interactions included (their unique key). The same ``--seed`` and sizes give
the same data; attributes are drawn from one random stream each, so growing ``--users``
or ``--businesses`` keeps the existing entities as they were (their interactions are
re-drawn, though, so a run with other sizes or another seed adds new interaction keys
to existing users; it never duplicates a key). Timestamps span the 180 days before
today's midnight (UTC), so a re-run on the same day matches exactly.

All demo users share one password hash: the password is ``demo``.

PostgreSQL writes go through psycopg 3 ``COPY`` into temporary staging tables, then
``INSERT … SELECT … ON CONFLICT DO NOTHING`` (interactions as hand-built binary COPY from
numpy, in chunks of ``--batch-size`` rows written by ``--jobs`` connections at once);
other databases use ``bulk_create`` with ``ignore_conflicts``. ``-v 2`` prints the time
of each phase.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, reset_queries, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.utils import timezone
from django.utils.text import slugify

from example_project.xo_black import demo_data
from example_project.xo_black.models import Business, Category
from xo_recommender.conf import settings as rec_settings
from xo_recommender.models import Interaction

try:
    from tqdm import tqdm
except ImportError:  # tqdm is a demo extra; without it there is just no progress bar
    tqdm = None

#: Interaction types the model generates, in code order (the staging table's smallint).
TYPES: tuple[str, ...] = ("view", "like", "save", "purchase", "share")
#: Base probability that an engaged business is also liked / saved / purchased / shared.
EXTRA_TYPE_PROB: dict[str, float] = {"like": 0.15, "save": 0.07, "purchase": 0.05, "share": 0.025}

USERNAME = "demo_user_{:06d}"
BUSINESS_SLUG = "demo-{:06d}"
DEMO_PASSWORD = "demo"
HISTORY_DAYS = 180

#: Users scored together (one block of the user × candidate score matrix).
USER_BLOCK = 256
#: Candidate businesses per block; a bigger city is sampled down to this (uniformly, so
#: the choice model is unchanged in expectation and the cost stays O(users × POOL)).
POOL = 2048
#: One user engages with at most this many businesses.
MAX_ENGAGED = POOL // 2

_US = 1_000_000
_PG_EPOCH_US = 946_684_800 * _US  # 2000-01-01 in Unix microseconds

Bar = Any


def _rng(seed: int, stream: str) -> np.random.Generator:
    """One independent random stream per attribute, so sizes don't shift other draws."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _gumbel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Gumbel noise: argmax/top-k of ``log p + G`` samples ∝ p without replacement."""
    u = rng.random(shape, dtype=np.float32)
    with np.errstate(divide="ignore"):
        return -np.log(-np.log(u))


def _km_offsets_to_latlon(
    city: np.ndarray, dx: np.ndarray, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """City centre + east/north offsets in km -> latitude, longitude (degrees)."""
    lat0 = np.array([c.latitude for c in demo_data.CITIES])[city]
    lon0 = np.array([c.longitude for c in demo_data.CITIES])[city]
    lat = lat0 + dy / 110.574
    lon = lon0 + dx / (111.320 * np.cos(np.radians(lat0)))
    return np.round(lat, 6), np.round(lon, 6)


def _top_k(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of the largest keys (largest first) and a mask of the first k.

    ``top[row, :k[row]]`` are that row's ``k[row]`` best columns; ``top[mask]`` lists
    them row by row (matching ``np.repeat(rows, k)``).
    """
    kmax = int(k.max()) if len(k) else 0
    if kmax == 0:
        part = np.zeros((len(k), 0), np.int64)
    elif kmax < keys.shape[1]:
        part = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
    else:
        part = np.broadcast_to(np.arange(keys.shape[1]), keys.shape)
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    return top, np.arange(top.shape[1])[None, :] < np.asarray(k)[:, None]


# --------------------------------------------------------------------------- generation

if len(demo_data.CATEGORIES) > 64 or len(demo_data.TAG_VOCAB) > 64:  # pragma: no cover
    raise ImportError("seed_demo keeps categories and tags in 64-bit sets; trim demo_data.")

#: Score of sharing 0, 1, 2, … favourite categories / interest tags with a business.
_TASTE = np.array([0.0] + [3.0 + 0.5 * k for k in range(1, 65)], np.float32)
_TAG_TASTE = np.array([0.0, 0.8] + [1.6] * 63, np.float32)


def _bits(onehot: np.ndarray) -> np.ndarray:
    """Rows of a 0/1 matrix (at most 64 columns) as uint64 bit sets."""
    weights = np.left_shift(np.uint64(1), np.arange(onehot.shape[1], dtype=np.uint64))
    return np.bitwise_or.reduce(np.where(onehot > 0, weights, np.uint64(0)), axis=1)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 (``np.bitwise_count`` on NumPy 2, SWAR otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    m1, m2, m4 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333),
                  np.uint64(0x0F0F0F0F0F0F0F0F))
    x = x - ((x >> np.uint64(1)) & m1)
    x = (x & m2) + ((x >> np.uint64(2)) & m2)
    x = (x + (x >> np.uint64(4))) & m4
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)


@dataclass
class Businesses:
    """Generated businesses, index ``i`` -> slug ``demo-{i:06d}``."""

    city: np.ndarray  # int, index into CITIES
    x: np.ndarray  # km east of the city centre (float32)
    y: np.ndarray  # km north
    lat: np.ndarray
    lon: np.ndarray
    categories: list[list[int]]  # indices into CATEGORIES
    tags: list[list[str]]
    cat_bits: np.ndarray  # uint64 bit set of category indices
    tag_bits: np.ndarray  # uint64 bit set of TAG_VOCAB indices
    quality: np.ndarray  # latent, N(0, 1)
    rating: np.ndarray
    popularity: np.ndarray
    active: np.ndarray  # bool
    names: list[str]
    created_days_ago: np.ndarray

    def __len__(self) -> int:
        return len(self.city)


@dataclass
class Users:
    """Generated users, index ``i`` -> username ``demo_user_{i:06d}``."""

    city: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    interests: list[list[str]]
    pref_bits: np.ndarray  # uint64 bit set: stated + hidden favourite categories
    tag_bits: np.ndarray  # uint64 bit set: stated interest tags
    distance_km: np.ndarray  # personal distance-decay scale
    activity: np.ndarray  # relative activity (long-tailed)
    first_name: np.ndarray
    last_name: np.ndarray
    joined_days_ago: np.ndarray

    def __len__(self) -> int:
        return len(self.city)


def _vocab() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Category weights, category -> group-tag matrix, generic-tag mask, tag index."""
    tag_index = {t: i for i, t in enumerate(demo_data.TAG_VOCAB)}
    cat_w = np.array([c.weight for c in demo_data.CATEGORIES])
    cat_tags = np.zeros((len(demo_data.CATEGORIES), len(tag_index)), np.float32)
    for ci, spec in enumerate(demo_data.CATEGORIES):
        cat_tags[ci, [tag_index[t] for t in demo_data.GROUP_TAGS[spec.group]]] = 1.0
    generic = np.zeros(len(tag_index), bool)
    generic[[tag_index[t] for t in demo_data.GENERIC_TAGS]] = True
    return cat_w / cat_w.sum(), cat_tags, generic, tag_index


def city_count(n_businesses: int) -> int:
    """Cities in use: few businesses go to the biggest five, not 12 thin scatterings."""
    return int(np.clip(n_businesses // 40, 5, len(demo_data.CITIES)))


def _city_weights(n_cities: int) -> np.ndarray:
    w = np.array([c.weight for c in demo_data.CITIES[:n_cities]])
    return w / w.sum()


def generate_businesses(n: int, seed: int, n_cities: int) -> Businesses:
    """Businesses scattered around city centres, with categories, tags and quality."""
    cat_p, cat_tags, generic, _ = _vocab()
    n_cat, n_tag = cat_tags.shape
    spread = np.array([c.spread_km for c in demo_data.CITIES])
    city = _rng(seed, "b.city").choice(n_cities, n, p=_city_weights(n_cities))
    off = _rng(seed, "b.pos").standard_normal((n, 2)) * spread[city][:, None]
    lat, lon = _km_offsets_to_latlon(city, off[:, 0], off[:, 1])

    # 1-3 categories: a weighted primary, extras mostly from the same group.
    primary = _rng(seed, "b.cat").choice(n_cat, n, p=cat_p)
    n_cats = _rng(seed, "b.ncat").choice([1, 2, 3], n, p=[0.55, 0.33, 0.12])
    groups = np.array([c.group for c in demo_data.CATEGORIES])
    same_group = groups[:, None] == groups[None, :]
    extra_w = np.log(cat_p)[None, :] + np.where(same_group, 1.5, -1.0)[primary]
    extra_w[np.arange(n), primary] = -np.inf
    extra_keys = extra_w + _gumbel(_rng(seed, "b.cat2"), (n, n_cat))
    extras = np.argsort(-extra_keys, axis=1, kind="stable")[:, :2]
    categories = [
        [int(primary[i]), *map(int, extras[i, : n_cats[i] - 1])] for i in range(n)
    ]
    cat_onehot = np.zeros((n, n_cat), np.float32)
    for i, cats in enumerate(categories):
        cat_onehot[i, cats] = 1.0

    # 2-5 tags: mostly the primary category's group, sometimes generic ones.
    n_tags = _rng(seed, "b.ntag").choice([2, 3, 4, 5], n, p=[0.3, 0.35, 0.25, 0.1])
    tag_w = np.where(cat_tags[primary] > 0, 0.0, np.where(generic, -2.0, -np.inf))
    tag_keys = tag_w + _gumbel(_rng(seed, "b.tags"), (n, n_tag))
    tag_order = np.argsort(-tag_keys, axis=1, kind="stable")[:, :5]
    vocab = demo_data.TAG_VOCAB
    tags = [[vocab[t] for t in tag_order[i, : n_tags[i]]] for i in range(n)]
    tag_onehot = np.zeros((n, n_tag), np.float32)
    for i in range(n):
        tag_onehot[i, tag_order[i, : n_tags[i]]] = 1.0

    # One latent quality drives rating, popularity and (later) choice probability.
    quality = _rng(seed, "b.quality").standard_normal(n)
    noise = _rng(seed, "b.noise").standard_normal((n, 2))
    rating = np.clip(np.round(3.7 + 0.55 * quality + 0.35 * noise[:, 0], 1), 1.0, 5.0)
    popularity = np.round(np.exp(3.0 + 1.1 * quality + 0.6 * noise[:, 1]), 1)
    active = _rng(seed, "b.active").random(n) >= 0.03

    parts = _rng(seed, "b.name").random((n, 2))
    prefixes = demo_data.NAME_PREFIXES
    names = []
    for i in range(n):
        nouns = demo_data.CATEGORIES[primary[i]].nouns
        prefix = prefixes[int(parts[i, 0] * len(prefixes))]
        names.append(f"{prefix} {nouns[int(parts[i, 1] * len(nouns))]} #{i + 1}")
    created = _rng(seed, "b.created").integers(HISTORY_DAYS + 1, 5 * 365, n)
    return Businesses(
        city=city, x=off[:, 0].astype(np.float32), y=off[:, 1].astype(np.float32),
        lat=lat, lon=lon, categories=categories, tags=tags, cat_bits=_bits(cat_onehot),
        tag_bits=_bits(tag_onehot), quality=quality, rating=rating, popularity=popularity,
        active=active, names=names, created_days_ago=created,
    )


def generate_users(n: int, seed: int, n_cities: int) -> Users:
    """Users living around city centres with 2-5 stated interests and a hidden taste."""
    cat_p, cat_tags, generic, _ = _vocab()
    n_cat, n_tag = cat_tags.shape
    spread = np.array([c.spread_km for c in demo_data.CITIES]) * 1.3
    city = _rng(seed, "u.city").choice(n_cities, n, p=_city_weights(n_cities))
    off = _rng(seed, "u.pos").standard_normal((n, 2)) * spread[city][:, None]
    lat, lon = _km_offsets_to_latlon(city, off[:, 0], off[:, 1])

    # Favourite categories (weighted, without replacement): the first n_stated are
    # stated as interests, the next one is a hidden taste for about half the users.
    fav = np.argsort(
        -(np.log(cat_p) + _gumbel(_rng(seed, "u.fav"), (n, n_cat))), axis=1, kind="stable"
    )[:, :4]
    n_total = _rng(seed, "u.ninterest").choice([2, 3, 4, 5], n, p=[0.25, 0.35, 0.25, 0.15])
    n_stated = np.minimum(_rng(seed, "u.nfav").choice([1, 2, 3], n, p=[0.35, 0.45, 0.2]),
                          n_total)
    hidden = _rng(seed, "u.hidden").random(n) < 0.5
    stated = np.zeros((n, n_cat), np.float32)
    rows = np.arange(n)
    for j in range(3):
        mask = n_stated > j
        stated[rows[mask], fav[mask, j]] = 1.0
    pref = stated.copy()
    pref[rows[hidden], fav[rows[hidden], n_stated[hidden]]] = 1.0

    # Interest tags fit the stated categories' groups; generic ones now and then.
    in_group = (stated @ cat_tags) > 0
    tag_w = np.where(in_group, 0.0, np.where(generic, -1.5, -4.0))
    tag_order = np.argsort(-(tag_w + _gumbel(_rng(seed, "u.tags"), (n, n_tag))), axis=1,
                           kind="stable")[:, :4]
    n_tags = n_total - n_stated
    tag_onehot = np.zeros((n, n_tag), np.float32)
    interests = []
    cat_names = [c.name for c in demo_data.CATEGORIES]
    vocab = demo_data.TAG_VOCAB
    for i in range(n):
        chosen_tags = tag_order[i, : n_tags[i]]
        tag_onehot[i, chosen_tags] = 1.0
        interests.append([cat_names[c] for c in fav[i, : n_stated[i]]]
                         + [vocab[t] for t in chosen_tags])

    distance_km = 3.0 * np.exp(0.4 * _rng(seed, "u.dist").standard_normal(n))
    activity = np.exp(1.1 * _rng(seed, "u.activity").standard_normal(n))
    names = _rng(seed, "u.name")
    first = names.integers(0, len(demo_data.FIRST_NAMES), n)
    last = names.integers(0, len(demo_data.LAST_NAMES), n)
    joined = _rng(seed, "u.joined").integers(HISTORY_DAYS + 1, 3 * 365, n)
    return Users(
        city=city, x=off[:, 0].astype(np.float32), y=off[:, 1].astype(np.float32),
        lat=lat, lon=lon, interests=interests, pref_bits=_bits(pref), tag_bits=_bits(tag_onehot),
        distance_km=distance_km.astype(np.float32), activity=activity, first_name=first,
        last_name=last, joined_days_ago=joined,
    )


@dataclass
class Interactions:
    """Interaction rows by generated index (not yet database ids), sorted by key."""

    user: np.ndarray  # int64 user index
    business: np.ndarray  # int64 business index
    type: np.ndarray  # int16 index into TYPES
    count: np.ndarray  # int32
    first_us: np.ndarray  # int64 Unix microseconds
    last_us: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def _engagements(
    users: Users, biz: Businesses, per_user: np.ndarray, rng: np.random.Generator,
    bar: Bar | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample which businesses each user engages with: (user, business, matches-taste).

    Per user, P(business) ∝ exp(score) over the businesses of their city, drawn without
    replacement by Gumbel top-k; score = taste match + quality - distance / scale.
    """
    out_u, out_b, out_m = [], [], []
    quality = biz.quality.astype(np.float32)
    penalty = np.where(biz.active, 0.0, -2.5).astype(np.float32)
    for c in range(len(demo_data.CITIES)):
        b_city = np.flatnonzero(biz.city == c)
        u_city = np.flatnonzero((users.city == c) & (per_user > 0))
        if not len(b_city) or not len(u_city):
            if bar is not None:
                bar.update(len(u_city))
            continue
        cap = min(len(b_city), MAX_ENGAGED)
        n_city = np.minimum(per_user[u_city], cap)
        order = np.argsort(-n_city, kind="stable")  # similar k per block: less top-k work
        u_city, n_city = u_city[order], n_city[order]
        for start in range(0, len(u_city), USER_BLOCK):
            ub, nb = u_city[start:start + USER_BLOCK], n_city[start:start + USER_BLOCK]
            pool = b_city if len(b_city) <= POOL else np.sort(
                rng.choice(b_city, POOL, replace=False))
            # float32 throughout: this block is the generator's hot loop.
            dx = users.x[ub, None] - biz.x[None, pool]
            dy = users.y[ub, None] - biz.y[None, pool]
            score = np.sqrt(dx * dx + dy * dy)
            score *= -1.0 / users.distance_km[ub, None]
            cat = _popcount(users.pref_bits[ub, None] & biz.cat_bits[None, pool])
            tag = _popcount(users.tag_bits[ub, None] & biz.tag_bits[None, pool])
            matched = cat > 0
            score += _TASTE[cat]
            score += _TAG_TASTE[tag]
            score += (0.7 * quality[pool] + penalty[pool])[None, :]
            # Exponential race: the k smallest E/p are k draws ∝ p without replacement.
            race = rng.standard_exponential(score.shape, dtype=np.float32)
            score -= np.log(np.maximum(race, np.float32(1e-30), out=race), out=race)
            top, mask = _top_k(score, nb)
            out_u.append(np.repeat(ub, nb))
            out_b.append(pool[top[mask]])
            out_m.append(np.take_along_axis(matched, top, axis=1)[mask])
            if bar is not None:
                bar.update(len(ub))
    if not out_u:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool)
    return np.concatenate(out_u), np.concatenate(out_b), np.concatenate(out_m)


def _allocate(users: Users, biz: Businesses, total: int, rng: np.random.Generator
              ) -> np.ndarray:
    """Engagements per user ∝ long-tailed activity, within what each user's city offers.

    What a capped user cannot take is re-dealt to users with room (water-filling), so
    small demos still get close to the requested number of interactions.
    """
    per_city = np.bincount(biz.city, minlength=len(demo_data.CITIES))
    cap = np.minimum(per_city[users.city], MAX_ENGAGED)
    weight = users.activity * (cap > 0)
    alloc = np.zeros(len(users), np.int64)
    for _ in range(8):
        room = cap - alloc
        w = weight * (room > 0)
        left = total - int(alloc.sum())
        if left <= 0 or w.sum() == 0:
            break
        alloc += np.minimum(rng.multinomial(left, w / w.sum()), room)
    return alloc


def generate_interactions(
    users: Users, biz: Businesses, target: int, seed: int, anchor_us: int,
    bar: Bar | None = None,
) -> Interactions:
    """About ``target`` interaction rows (at most ``target``) from the generative model."""
    empty = Interactions(*(np.empty(0, t) for t in
                           (np.int64, np.int64, np.int16, np.int32, np.int64, np.int64)))
    if not target or not len(users) or not len(biz):
        return empty
    rows_per_engagement = 1.0 + 1.2 * sum(EXTRA_TYPE_PROB.values())  # 1.2: mean lift
    n_engaged = int(np.ceil(target / rows_per_engagement * 1.03)) + 10
    per_user = _allocate(users, biz, n_engaged, _rng(seed, "i.alloc"))
    eu, eb, match = _engagements(users, biz, per_user, _rng(seed, "i.choice"), bar)
    n = len(eu)
    if not n:
        return empty

    # Which extra types each engagement has: more likely for good, matching businesses.
    rng = _rng(seed, "i.types")
    lift = np.exp(0.35 * biz.quality[eb]) * np.where(match, 1.3, 0.8)
    extra = np.stack([rng.random(n) < np.minimum(p * lift, 0.9)
                      for p in EXTRA_TYPE_PROB.values()], axis=1)  # (n, 4)

    # Trim to at most ``target`` rows by dropping random view-only engagements.
    keep = np.ones(n, bool)
    surplus = n + int(extra.sum()) - target
    if surplus > 0:
        view_only = np.flatnonzero(~extra.any(axis=1))
        drop = rng.choice(view_only, min(surplus, len(view_only)), replace=False)
        keep[drop] = False
        surplus -= len(drop)
        if surplus > 0:  # only when nearly everything has extras: drop whole engagements
            keep[np.flatnonzero(keep)[-surplus:]] = False
    eu, eb, extra = eu[keep], eb[keep], extra[keep]
    n = len(eu)

    # Every engaged business is viewed; views repeat (count), others follow the view.
    window = HISTORY_DAYS * 86_400 * _US
    view_first = anchor_us - (rng.random(n) ** 1.5 * window).astype(np.int64)
    view_count = np.minimum(rng.geometric(0.45, n), 30).astype(np.int32)
    view_last = view_first + (
        (view_count > 1) * rng.random(n) * (anchor_us - view_first)).astype(np.int64)
    users_, biz_, types, counts, firsts, lasts = [eu], [eb], [np.zeros(n, np.int16)], \
        [view_count], [view_first], [view_last]
    for code, name in enumerate(TYPES[1:], start=1):
        has = extra[:, code - 1]
        m = int(has.sum())
        delay = (rng.exponential(1.5 * 86_400, m) * _US).astype(np.int64)
        first = np.minimum(view_first[has] + delay, anchor_us - _US)
        count = (np.minimum(rng.geometric(0.7, m), 10) if name == "purchase"
                 else np.ones(m)).astype(np.int32)
        last = first + ((count > 1) * rng.random(m) * (anchor_us - first)).astype(np.int64)
        users_.append(eu[has])
        biz_.append(eb[has])
        types.append(np.full(m, code, np.int16))
        counts.append(count)
        firsts.append(first)
        lasts.append(last)
    out = Interactions(*(np.concatenate(a) for a in (users_, biz_, types, counts, firsts,
                                                     lasts)))
    order = np.lexsort((out.type, out.business, out.user))
    return Interactions(*(getattr(out, f)[order] for f in
                          ("user", "business", "type", "count", "first_us", "last_us")))


# ------------------------------------------------------------------------------ writing


def _us_to_datetime(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class Writer:
    """Bulk writes for any backend: ``bulk_create(ignore_conflicts=True)`` in batches."""

    def __init__(self, connection: BaseDatabaseWrapper, batch_size: int, bar: Any,
                 jobs: int = 1) -> None:
        self.connection = connection
        self.batch_size = batch_size
        self.bar = bar
        self.jobs = jobs
        self._lock = threading.Lock()

    def _progress(self, n: int) -> None:
        if self.bar is not None:
            with self._lock:
                self.bar.update(n)

    def insert_rows(self, model: type[Model], key: str, rows: list[dict[str, Any]],
                    prefix: str) -> tuple[np.ndarray, np.ndarray]:
        """Insert rows whose ``key`` is new; return (id per row, row is newly created)."""
        existing = set(model._default_manager.using(self.connection.alias)
                       .filter(**{f"{key}__startswith": prefix})
                       .values_list(key, flat=True))
        new = np.array([r[key] not in existing for r in rows], bool)
        todo = [r for r, is_new in zip(rows, new, strict=True) if is_new]
        for part in _batches(len(todo), self.batch_size):
            with transaction.atomic(using=self.connection.alias):
                model._default_manager.using(self.connection.alias).bulk_create(
                    [model(**r) for r in todo[part]], ignore_conflicts=True)
            reset_queries()
            self._progress(part.stop - part.start)
        self._progress(len(rows) - len(todo))
        ids = dict(model._default_manager.using(self.connection.alias)
                   .filter(**{f"{key}__startswith": prefix}).values_list(key, "pk"))
        return np.array([ids[r[key]] for r in rows], np.int64), new

    def link_categories(self, pairs: list[tuple[int, int]]) -> None:
        through = Business.categories.through
        for part in _batches(len(pairs), self.batch_size):
            through.objects.using(self.connection.alias).bulk_create(
                [through(business_id=b, category_id=c) for b, c in pairs[part]],
                ignore_conflicts=True)
            reset_queries()

    def insert_interactions(self, user_id: np.ndarray, business_id: np.ndarray,
                            inter: Interactions) -> None:
        types = np.array(TYPES)
        for part in _batches(len(inter), self.batch_size):
            objs = [
                Interaction(user_id=int(u), business_id=int(b), interaction_type=str(t),
                            weight=1.0, count=int(c), first_seen=_us_to_datetime(f),
                            last_seen=_us_to_datetime(la))
                for u, b, t, c, f, la in zip(
                    user_id[inter.user[part]], business_id[inter.business[part]],
                    types[inter.type[part]], inter.count[part], inter.first_us[part],
                    inter.last_us[part], strict=True)
            ]
            with transaction.atomic(using=self.connection.alias):
                Interaction.objects.using(self.connection.alias).bulk_create(
                    objs, ignore_conflicts=True)
            reset_queries()
            self._progress(part.stop - part.start)

    def finish(self) -> None:
        """Nothing to do after writing on this backend."""


#: One interaction row in PostgreSQL's binary COPY format: a field count, then each
#: field as (byte length, big-endian value). The type goes in as a smallint code.
_COPY_ROW = np.dtype([
    ("nf", ">i2"), ("l0", ">i4"), ("u", ">i8"), ("l1", ">i4"), ("b", ">i8"),
    ("l2", ">i4"), ("t", ">i2"), ("l3", ">i4"), ("c", ">i4"), ("l4", ">i4"),
    ("f", ">i8"), ("l5", ">i4"), ("s", ">i8"),
])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\0" + b"\0" * 8  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"


class PostgresWriter(Writer):
    """COPY into temp staging tables, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``."""

    def _table(self, model: type[Model]) -> str:
        return self.connection.ops.quote_name(model._meta.db_table)

    def insert_rows(self, model: type[Model], key: str, rows: list[dict[str, Any]],
                    prefix: str) -> tuple[np.ndarray, np.ndarray]:
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, bool)
        q = self.connection.ops.quote_name
        fields = [model._meta.get_field(name) for name in rows[0]]
        cols = ", ".join(q(f.column) for f in fields)
        key_col = q(model._meta.get_field(key).column)
        pk_col = q(model._meta.pk.column)
        table = self._table(model)
        json_fields = {f.name for f in fields if f.get_internal_type() == "JSONField"}
        ids = np.zeros(len(rows), np.int64)
        new = np.zeros(len(rows), bool)
        with transaction.atomic(using=self.connection.alias), \
                self.connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("DROP TABLE IF EXISTS _seed_stage")
            cursor.execute(f"CREATE TEMP TABLE _seed_stage AS SELECT {cols} FROM {table} "
                           "WITH NO DATA")
            cursor.execute("ALTER TABLE _seed_stage ADD COLUMN _idx bigint")
            with cursor.copy(f"COPY _seed_stage ({cols}, _idx) FROM STDIN") as copy:
                for i, row in enumerate(rows):
                    copy.write_row([json.dumps(v) if k in json_fields else v
                                    for k, v in row.items()] + [i])
                    if i % 10_000 == 9_999:
                        self._progress(10_000)
            self._progress(len(rows) % 10_000)
            cursor.execute(
                f"WITH ins AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM _seed_stage "
                f"ORDER BY _idx ON CONFLICT DO NOTHING RETURNING {key_col}) "
                f"SELECT s._idx FROM ins JOIN _seed_stage s ON s.{key_col} = ins.{key_col}")
            new[[r[0] for r in cursor.fetchall()]] = True
            cursor.execute(f"SELECT s._idx, t.{pk_col} FROM _seed_stage s "
                           f"JOIN {table} t ON t.{key_col} = s.{key_col}")
            found = np.array(cursor.fetchall(), np.int64).reshape(-1, 2)
            ids[found[:, 0]] = found[:, 1]
            cursor.execute("DROP TABLE _seed_stage")
        return ids, new

    def link_categories(self, pairs: list[tuple[int, int]]) -> None:
        through = Business.categories.through
        q = self.connection.ops.quote_name
        b_col = q(through._meta.get_field("business").column)
        c_col = q(through._meta.get_field("category").column)
        with transaction.atomic(using=self.connection.alias), \
                self.connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS _seed_links")
            cursor.execute("CREATE TEMP TABLE _seed_links (b bigint, c bigint)")
            with cursor.copy("COPY _seed_links (b, c) FROM STDIN") as copy:
                for pair in pairs:
                    copy.write_row(pair)
            cursor.execute(f"INSERT INTO {self._table(through)} ({b_col}, {c_col}) "
                           "SELECT b, c FROM _seed_links ON CONFLICT DO NOTHING")
            cursor.execute("DROP TABLE _seed_links")

    def insert_interactions(self, user_id: np.ndarray, business_id: np.ndarray,
                            inter: Interactions) -> None:
        """Binary COPY built by numpy (no per-row Python), one transaction per chunk.

        The server's work (five indexes, two deferred foreign-key checks per row)
        dominates, so ``jobs`` threads write chunks at once, each on its own connection.
        Inside a caller's transaction other connections could not see the users and
        businesses just inserted, so then everything goes through this connection.
        """
        chunks = list(_batches(len(inter), self.batch_size))
        jobs = max(1, min(self.jobs, len(chunks)))
        if jobs == 1 or self.connection.in_atomic_block:
            for part in chunks:
                self._write_chunk(self.connection, user_id, business_id, inter, part)
            return
        alias = self.connection.alias

        def work(mine: list[slice]) -> None:
            try:
                for part in mine:
                    self._write_chunk(connections[alias], user_id, business_id, inter, part)
            finally:
                connections[alias].close()  # this thread's own connection

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(work, chunks[j::jobs]) for j in range(jobs)]:
                future.result()

    def _write_chunk(self, connection: BaseDatabaseWrapper, user_id: np.ndarray,
                     business_id: np.ndarray, inter: Interactions, part: slice) -> None:
        buf = np.empty(part.stop - part.start, _COPY_ROW)
        buf["nf"] = 6
        for name, size in (("l0", 8), ("l1", 8), ("l2", 2), ("l3", 4), ("l4", 8), ("l5", 8)):
            buf[name] = size
        buf["u"] = user_id[inter.user[part]]
        buf["b"] = business_id[inter.business[part]]
        buf["t"] = inter.type[part]
        buf["c"] = inter.count[part]
        buf["f"] = inter.first_us[part] - _PG_EPOCH_US
        buf["s"] = inter.last_us[part] - _PG_EPOCH_US
        meta = Interaction._meta
        q = connection.ops.quote_name
        cols = ", ".join(q(meta.get_field(f).column) for f in (
            "user", "business", "interaction_type", "weight", "count", "first_seen",
            "last_seen"))
        type_array = "ARRAY[" + ", ".join(f"'{t}'" for t in TYPES) + "]::varchar[]"
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("DROP TABLE IF EXISTS _seed_inter")
            cursor.execute("CREATE TEMP TABLE _seed_inter (u bigint, b bigint, t smallint, "
                           "c integer, f timestamptz, s timestamptz)")
            with cursor.copy("COPY _seed_inter FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(_COPY_HEADER)
                view = memoryview(buf).cast("B")
                for off in range(0, len(view), 8 << 20):
                    copy.write(view[off:off + (8 << 20)])
                copy.write(_COPY_TRAILER)
            cursor.execute(
                f"INSERT INTO {q(meta.db_table)} ({cols}) "
                f"SELECT u, b, ({type_array})[t + 1], 1.0, c, f, s FROM _seed_inter "
                "ON CONFLICT DO NOTHING")
            cursor.execute("DROP TABLE _seed_inter")
        self._progress(part.stop - part.start)

    def finish(self) -> None:
        """Fresh planner statistics, so the recommender's first queries plan well."""
        with self.connection.cursor() as cursor:
            for model in (get_user_model(), Business, Business.categories.through,
                          Interaction):
                cursor.execute(f"ANALYZE {self._table(model)}")


# ------------------------------------------------------------------------------ command


class Command(BaseCommand):
    help = ("Create demo users, businesses, categories and interactions drawn from a "
            "generative model (idempotent; demo users' password is 'demo').")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=500, help="Users (default 500).")
        parser.add_argument("--businesses", type=int, default=200,
                            help="Businesses (default 200).")
        parser.add_argument("--interactions", type=int, default=10_000,
                            help="Target interaction rows; at most this many are generated "
                                 "(default 10,000).")
        parser.add_argument("--seed", type=int, default=42,
                            help="Random seed: the same seed and sizes give the same data.")
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Rows per write: bulk_create batch (default 2,000), or "
                                 "COPY chunk on PostgreSQL (default 500,000).")
        parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                            help="Parallel connections writing interactions on PostgreSQL "
                                 "(default: 2, or 1 on a single CPU).")
        parser.add_argument("--quiet", action="store_true", help="No progress bar.")
        parser.add_argument("--database", default=None,
                            help="Database alias (default: the router's choice).")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        n_users, n_biz, n_inter = options["users"], options["businesses"], \
            options["interactions"]
        if min(n_users, n_biz, n_inter) < 0:
            raise CommandError("Sizes must be >= 0.")
        if max(n_users, n_biz) > 1_000_000:
            raise CommandError("At most 999,999 users and businesses (6-digit keys).")
        seed = options["seed"]
        alias = options["database"] or router.db_for_write(Interaction)
        connection = connections[alias]
        postgres = connection.vendor == "postgresql"
        batch_size = options["batch_size"] or (500_000 if postgres else 2_000)
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1.")
        show = not options["quiet"] and tqdm is not None and sys.stderr.isatty()
        unknown = set(TYPES) - set(rec_settings.INTERACTION_WEIGHTS)
        if unknown:
            raise CommandError(f"XO_RECOMMENDER['INTERACTION_WEIGHTS'] lacks the demo's "
                               f"types: {', '.join(sorted(unknown))}.")

        user_model = get_user_model()
        models = {"users": user_model, "businesses": Business, "categories": Category,
                  "interactions": Interaction}
        before = {k: m._default_manager.using(alias).count() for k, m in models.items()}
        anchor = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0,
                                                        microsecond=0)
        anchor_us = int(anchor.timestamp()) * _US

        def bar(total: int, desc: str) -> Any:
            return tqdm(total=total, desc=desc, unit="row", unit_scale=True, leave=False,
                        file=sys.stderr, dynamic_ncols=True) if show else None

        n_cities = city_count(n_biz)
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = now - mark
            mark = now

        users = generate_users(n_users, seed, n_cities)
        biz = generate_businesses(n_biz, seed, n_cities)
        phase("generate users and businesses")
        progress = bar(n_users, "sampling interactions")
        inter = generate_interactions(users, biz, n_inter, seed, anchor_us, progress)
        if progress is not None:
            progress.close()
        phase("generate interactions")

        progress = bar(n_users + n_biz + len(inter), "writing")
        writer = (PostgresWriter if postgres else Writer)(
            connection, batch_size, progress, jobs=max(1, options["jobs"]))
        category_ids = self._categories(alias)
        user_id, _ = writer.insert_rows(user_model, "username",
                                        self._user_rows(users, anchor), "demo_user_")
        phase("write users")
        business_id, new_biz = writer.insert_rows(Business, "slug",
                                                  self._business_rows(biz, anchor), "demo-")
        writer.link_categories([
            (int(business_id[i]), category_ids[c])
            for i in np.flatnonzero(new_biz) for c in biz.categories[i]
        ])
        phase("write businesses")
        writer.insert_interactions(user_id, business_id, inter)
        phase("write interactions")
        writer.finish()
        phase("analyze")
        if progress is not None:
            progress.close()

        after = {k: m._default_manager.using(alias).count() for k, m in models.items()}
        cities = Business.objects.using(alias).values("city").distinct().count()
        elapsed = time.perf_counter() - started
        summary = ", ".join(f"{after[k]:,} {k} (+{after[k] - before[k]:,})" for k in models)
        self.stdout.write(self.style.SUCCESS(
            f"seed_demo: {summary}, {cities} cities in {elapsed:.1f} s "
            f"(seed {seed}, {connection.vendor}; demo users' password is "
            f"'{DEMO_PASSWORD}')."))
        if options["verbosity"] >= 2:
            for name, seconds in phases.items():
                self.stdout.write(f"  {name}: {seconds:.1f} s")

    @staticmethod
    def _categories(alias: str) -> list[int]:
        """Create the categories that are missing; return the id of each spec, in order."""
        specs = [(c.name, slugify(c.name)) for c in demo_data.CATEGORIES]
        manager = Category.objects.using(alias)
        manager.bulk_create([Category(name=n, slug=s) for n, s in specs],
                            ignore_conflicts=True)
        by_slug = dict(manager.values_list("slug", "pk"))
        by_name = dict(manager.values_list("name", "pk"))
        return [by_slug.get(s) or by_name[n] for n, s in specs]

    @staticmethod
    def _user_rows(users: Users, anchor: datetime) -> list[dict[str, Any]]:
        # One PBKDF2 hash for everyone: hashing 200k passwords would take hours.
        password = make_password(DEMO_PASSWORD)
        cities = [c.name for c in demo_data.CITIES]
        first, last = demo_data.FIRST_NAMES, demo_data.LAST_NAMES
        rows = []
        for i in range(len(users)):
            username = USERNAME.format(i)
            rows.append({
                "username": username, "password": password, "is_superuser": False,
                "is_staff": False, "is_active": True,
                "first_name": first[users.first_name[i]],
                "last_name": last[users.last_name[i]],
                "email": f"{username}@demo.xoblack.example",
                "date_joined": anchor - timedelta(days=int(users.joined_days_ago[i])),
                "interests": users.interests[i], "city": cities[users.city[i]],
                "home_latitude": float(users.lat[i]), "home_longitude": float(users.lon[i]),
            })
        return rows

    @staticmethod
    def _business_rows(biz: Businesses, anchor: datetime) -> list[dict[str, Any]]:
        cities = [c.name for c in demo_data.CITIES]
        cat_names = [c.name for c in demo_data.CATEGORIES]
        rows = []
        for i in range(len(biz)):
            cats = [cat_names[c] for c in biz.categories[i]]
            rows.append({
                "slug": BUSINESS_SLUG.format(i), "name": biz.names[i],
                "description": f"{' · '.join(cats)} in {cities[biz.city[i]]}. "
                               f"Known for: {', '.join(biz.tags[i])}.",
                "city": cities[biz.city[i]], "tags": biz.tags[i],
                "latitude": float(biz.lat[i]), "longitude": float(biz.lon[i]),
                "popularity_score": float(biz.popularity[i]), "rating": float(biz.rating[i]),
                "is_active": bool(biz.active[i]),
                "created_at": anchor - timedelta(days=int(biz.created_days_ago[i])),
            })
        return rows
