"""``seed_demo``: counts, idempotence, determinism, and that its data has real structure.

The structure tests are the point of the generator: a recommender evaluated on this data
must be able to beat random, so users' interactions must lean towards their interests,
their home and good businesses. ``transaction=True`` because the PostgreSQL path uses
temporary staging tables and COPY in its own transactions.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from example_project.xo_black import demo_data
from example_project.xo_black.models import Business, Category
from xo_recommender.conf import settings as rec_settings
from xo_recommender.models import Interaction

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"users": 300, "businesses": 1500, "interactions": 3000}
User = get_user_model()


def seed(**options: Any) -> str:
    out = StringIO()
    call_command("seed_demo", **{**SIZES, "seed": 7, "quiet": True, **options}, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "businesses": Business.objects.count(),
        "categories": Category.objects.count(),
        "links": Business.categories.through.objects.count(),
        "interactions": Interaction.objects.count(),
    }


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


def terms_by_business() -> dict[int, set[str]]:
    """Each business's categories and tags, case-folded (what interests match against)."""
    terms: dict[int, set[str]] = {b.pk: {t.casefold() for t in b.tags}
                                  for b in Business.objects.all()}
    for business_id, name in Business.categories.through.objects.values_list(
            "business_id", "category__name"):
        terms[business_id].add(name.casefold())
    return terms


def same_city_random_pairs(n: int) -> list[tuple[Any, Any]]:
    """Random (user, business) pairs within the user's city: the baseline to beat."""
    rng = np.random.default_rng(0)
    by_city: dict[str, list[Any]] = {}
    for b in Business.objects.all():
        by_city.setdefault(b.city, []).append(b)
    users = [u for u in User.objects.all() if by_city.get(u.city)]
    pairs = []
    for i in rng.integers(0, len(users), n):
        options = by_city[users[i].city]
        pairs.append((users[i], options[rng.integers(0, len(options))]))
    return pairs


def test_creates_the_requested_data():
    out = seed()
    assert "seed_demo:" in out and " s " in out  # counts and the time it took
    got = counts()
    assert got["users"] == SIZES["users"]
    assert got["businesses"] == SIZES["businesses"]
    assert got["categories"] >= 30
    assert 0.9 * SIZES["interactions"] <= got["interactions"] <= SIZES["interactions"]
    assert Business.objects.values("city").distinct().count() >= 5

    businesses = list(Business.objects.prefetch_related("categories"))
    assert all(b.slug.startswith("demo-") for b in businesses)
    assert all(1 <= len(b.categories.all()) <= 3 for b in businesses)
    assert all(2 <= len(b.tags) <= 5 and set(b.tags) <= set(demo_data.TAG_VOCAB)
               for b in businesses)
    assert all(1.0 <= b.rating <= 5.0 and round(b.rating, 1) == b.rating for b in businesses)
    assert all(b.popularity_score > 0 for b in businesses)
    inactive = sum(not b.is_active for b in businesses) / len(businesses)
    assert 0 < inactive < 0.08

    centres = {c.name: c for c in demo_data.CITIES}
    for b in businesses:
        c = centres[b.city]
        assert haversine_km(b.latitude, b.longitude, c.latitude, c.longitude) < 60

    vocabulary = {c.name for c in demo_data.CATEGORIES} | set(demo_data.TAG_VOCAB)
    for user in User.objects.all():
        assert user.username.startswith("demo_user_")
        assert 2 <= len(user.interests) <= 5 and set(user.interests) <= vocabulary
        c = centres[user.city]
        assert haversine_km(user.home_latitude, user.home_longitude,
                            c.latitude, c.longitude) < 80
    assert User.objects.get(username="demo_user_000000").check_password("demo")


def test_rerun_does_not_duplicate():
    seed()
    first = counts()
    out = seed()
    assert counts() == first
    assert "(+0)" in out


def test_rerun_with_more_users_keeps_existing_rows_and_adds_the_rest():
    seed(users=100)
    before = dict(User.objects.values_list("username", "interests"))
    seed(users=150)
    after = dict(User.objects.values_list("username", "interests"))
    assert len(after) == 150
    assert {k: after[k] for k in before} == before


def snapshot() -> tuple[list, list, list]:
    users = list(User.objects.order_by("username").values_list(
        "username", "city", "interests", "home_latitude", "home_longitude", "first_name",
        "last_name", "email"))
    businesses = [
        (b.slug, b.name, b.description, b.city, b.tags, b.latitude, b.longitude,
         b.popularity_score, b.rating, b.is_active, sorted(c.name for c in b.categories.all()))
        for b in Business.objects.order_by("slug").prefetch_related("categories")
    ]
    interactions = [
        (u, b, t, c, last - first)
        for u, b, t, c, first, last in Interaction.objects.order_by(
            "user__username", "business__slug", "interaction_type").values_list(
            "user__username", "business__slug", "interaction_type", "count", "first_seen",
            "last_seen")
    ]
    return users, businesses, interactions


def wipe() -> None:
    Interaction.objects.all().delete()
    Business.objects.all().delete()
    Category.objects.all().delete()
    User.objects.all().delete()


def test_same_seed_gives_the_same_data_and_another_seed_does_not():
    seed()
    first = snapshot()
    wipe()
    seed()
    assert snapshot() == first
    wipe()
    seed(seed=8)
    other = snapshot()
    assert other[1] != first[1] and other[2] != first[2]


def test_small_batches_and_parallel_writers_write_the_same_data():
    """Chunking (and on PostgreSQL, several writer connections) changes nothing."""
    seed()
    first = snapshot()
    wipe()
    seed(batch_size=700, jobs=2)
    assert snapshot() == first


def test_interactions_lean_towards_users_interests():
    seed()
    terms = terms_by_business()
    interests = {u.pk: {t.casefold() for t in u.interests} for u in User.objects.all()}
    pairs = Interaction.objects.filter(interaction_type="view").values_list(
        "user_id", "business_id")
    observed = np.mean([bool(interests[u] & terms[b]) for u, b in pairs])
    baseline = np.mean([bool(interests[u.pk] & terms[b.pk])
                        for u, b in same_city_random_pairs(5000)])
    assert observed > 1.8 * baseline and observed - baseline > 0.2, (observed, baseline)


def test_interactions_lean_towards_home():
    seed()
    users = {u.pk: u for u in User.objects.all()}
    businesses = {b.pk: b for b in Business.objects.all()}
    pairs = [(users[u], businesses[b]) for u, b in Interaction.objects.filter(
        interaction_type="view").values_list("user_id", "business_id")]

    def median_km(pairs: list[tuple[Any, Any]]) -> float:
        return float(np.median(haversine_km(
            np.array([u.home_latitude for u, _ in pairs]),
            np.array([u.home_longitude for u, _ in pairs]),
            np.array([b.latitude for _, b in pairs]),
            np.array([b.longitude for _, b in pairs]))))

    observed, baseline = median_km(pairs), median_km(same_city_random_pairs(5000))
    assert observed < 0.75 * baseline, (observed, baseline)


def test_good_businesses_get_more_interactions():
    seed()
    per_business = Counter(Interaction.objects.values_list("business_id", flat=True))
    businesses = list(Business.objects.filter(is_active=True))
    rating = np.array([b.rating for b in businesses])
    popularity = np.log1p([b.popularity_score for b in businesses])
    hits = np.array([per_business[b.pk] for b in businesses])
    assert np.corrcoef(rating, hits)[0, 1] > 0.15
    assert np.corrcoef(popularity, hits)[0, 1] > 0.15
    inactive = Business.objects.filter(is_active=False)
    per_active = hits.mean()
    per_inactive = np.mean([per_business[b.pk] for b in inactive]) if inactive else 0.0
    assert per_inactive < per_active


def test_interactions_are_consistent():
    seed()
    rows = list(Interaction.objects.values_list(
        "user_id", "business_id", "interaction_type", "count", "first_seen", "last_seen"))
    user_ids = set(User.objects.values_list("pk", flat=True))
    business_ids = set(Business.objects.values_list("pk", flat=True))
    assert {r[0] for r in rows} <= user_ids
    assert {r[1] for r in rows} <= business_ids

    types = Counter(r[2] for r in rows)
    assert set(types) <= set(rec_settings.INTERACTION_WEIGHTS)
    assert types["view"] > types["like"] > types["purchase"] > 0
    assert types["like"] > types["share"] > 0 and types["save"] > 0

    viewed = {(r[0], r[1]) for r in rows if r[2] == "view"}
    purchases = [(r[0], r[1]) for r in rows if r[2] == "purchase"]
    assert sum(p in viewed for p in purchases) / len(purchases) >= 0.9

    now = timezone.now()
    assert all(r[3] >= 1 for r in rows)
    assert all(now - timedelta(days=182) <= r[4] <= r[5] <= now for r in rows)
    assert len({(r[0], r[1], r[2]) for r in rows}) == len(rows)


def test_activity_is_long_tailed():
    seed()
    per_user = np.array(list(Counter(
        Interaction.objects.values_list("user_id", flat=True)).values()))
    assert per_user.max() >= 4 * np.median(per_user)
    assert abs(per_user.sum() / SIZES["users"] - SIZES["interactions"] / SIZES["users"]) \
        < 0.15 * SIZES["interactions"] / SIZES["users"]


def test_empty_sizes_are_fine():
    seed(users=0, businesses=0, interactions=0)
    assert counts()["interactions"] == 0
    assert counts()["categories"] >= 30
