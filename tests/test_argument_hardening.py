"""Arguments of the Python API that once slipped through: a huge weight that spoilt the
model for everyone, counts beyond the column, ids in other spellings that missed the
cache's invalidation, instances of the wrong model, and loose types."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import ATL, UserFactory, coffee_and_books
from tests.test_api import API, client_for
from xo_recommender import recommend_for, record_interaction
from xo_recommender.exceptions import InvalidArgument
from xo_recommender.models import MAX_WEIGHT, Interaction
from xo_recommender.services import rebuild
from xo_recommender.services.interactions import STORED_COUNT_MAX
from xo_recommender.services.ranking import recommendation_page


@pytest.fixture
def world(db):
    world = coffee_and_books()
    rebuild()
    return world


def ids(results):
    return [r.business.pk for r in results]


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "field"), [
    ({"weight": 1e39}, "weight"), ({"weight": MAX_WEIGHT * 2}, "weight"),
    ({"weight": 2**2000}, "weight"), ({"weight": float("inf")}, "weight"),
    ({"count": 2**40}, "count"), ({"count": 0}, "count"), ({"count": 2.0}, "count"),
])
def test_weights_and_counts_beyond_what_is_meaningful_are_refused(user, business, kwargs,
                                                                  field):
    with pytest.raises(ValidationError) as err:
        record_interaction(user, business, "view", **kwargs)
    assert field in err.value.message_dict
    assert not Interaction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "field"), [
    ({"interaction_type": ["view"]}, "interaction_type"),
    ({"interaction_type": None}, "interaction_type"),
    ({"at": datetime(2020, 1, 1)}, "at"),  # naive, with USE_TZ
    ({"at": "2020-01-01T00:00:00Z"}, "at"),
])
def test_a_type_or_time_of_the_wrong_kind_is_a_validation_error(user, business, kwargs,
                                                                field):
    arguments = {"interaction_type": "view", **kwargs}
    with pytest.raises(ValidationError) as err:
        record_interaction(user, business, **arguments)
    assert field in err.value.message_dict
    assert not Interaction.objects.exists()
    aware = datetime(2020, 1, 1, tzinfo=UTC)
    assert record_interaction(user, business, "view", at=aware).first_seen == aware


@pytest.mark.django_db
def test_a_time_in_the_future_is_a_validation_error(user, business):
    """A row's weight follows its newest event: one dated next year would pin the row's
    weight and age until then, whatever came after."""
    later = timezone.now() + timedelta(days=365)
    with pytest.raises(ValidationError) as err:
        record_interaction(user, business, "save", 2.0, at=later)
    assert "at" in err.value.message_dict and "future" in str(err.value)
    assert not Interaction.objects.exists()
    soon = timezone.now() + timedelta(minutes=1)  # another machine's clock, a bit ahead
    assert record_interaction(user, business, "save", 2.0, at=soon).last_seen == soon
    assert record_interaction(user, business, "save", 0.5).weight == 2.0  # soon is later
    without_skew = timezone.now() + timedelta(minutes=6)
    with pytest.raises(ValidationError):
        record_interaction(user, business, "save", 1.0, at=without_skew)


@pytest.mark.django_db
def test_without_use_tz_an_aware_time_is_a_validation_error(user, business, settings):
    settings.USE_TZ = False
    with pytest.raises(ValidationError) as err:
        record_interaction(user, business, "view", at=datetime(2020, 1, 1, tzinfo=UTC))
    assert "at" in err.value.message_dict and "USE_TZ" in str(err.value)
    assert not Interaction.objects.exists()


@pytest.mark.django_db
def test_the_largest_weight_allowed_is_stored(user, business):
    assert record_interaction(user, business, "view", MAX_WEIGHT).weight == MAX_WEIGHT


@pytest.mark.django_db
def test_a_stored_count_saturates_instead_of_failing_the_write(user, business):
    record_interaction(user, business, "view")
    Interaction.objects.update(count=STORED_COUNT_MAX - 5)
    row = record_interaction(user, business, "view", count=10)
    assert row.count == STORED_COUNT_MAX


@pytest.mark.django_db
def test_arguments_swapped_or_of_another_model_are_refused(user, business):
    with pytest.raises(ValidationError) as err:
        record_interaction(business, user, "view")
    assert "user_id" in err.value.message_dict
    assert not Interaction.objects.exists()
    for bad in (True, 1.0, "one", None):
        with pytest.raises(ValidationError) as err:
            record_interaction(bad, business, "view")
        assert "user_id" in err.value.message_dict


@pytest.mark.django_db
def test_an_id_as_text_is_the_same_user_and_the_same_cache_entry(world):
    user = world["coffee_people"][0]
    as_text = f"0{user.pk}"
    assert ids(recommend_for(as_text, 4)) == ids(recommend_for(user.pk, 4))
    assert recommendation_page(as_text, 4).cached  # one entry, whatever the spelling
    shown = ids(recommend_for(as_text, 4))[0]
    record_interaction(user.pk, shown, "hide")  # retires the entry for every spelling
    assert shown not in ids(recommend_for(as_text, 4))


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "field"), [
    ({"exclude": [None]}, "exclude"), ({"exclude": ["x"]}, "exclude"),
    ({"exclude": 5}, "exclude"), ({"exclude": "12"}, "exclude"),
    ({"diversify": "no"}, "diversify"), ({"diversify": 1}, "diversify"),
    ({"near": ("1", "2")}, "near"), ({"near": (True, False)}, "near"),
    ({"category": 3}, "category"),
])
def test_loose_types_are_invalid_arguments_naming_them(world, kwargs, field):
    with pytest.raises(InvalidArgument) as err:
        recommend_for(world["coffee_people"][0], 3, **kwargs)
    assert err.value.field == field


@pytest.mark.django_db
def test_a_business_or_a_bool_is_not_a_user(world):
    for bad in (world["cafes"][0], True, 2.0):
        with pytest.raises(InvalidArgument) as err:
            recommend_for(bad, 3)
        assert err.value.field == "user"


@pytest.mark.django_db
def test_a_blank_category_is_any_category(world):
    user = UserFactory(interests=["coffee"], home_latitude=ATL[0], home_longitude=ATL[1])
    everything = ids(recommend_for(user, 5))
    assert len(everything) == 5
    for blank in ("", "  "):
        assert ids(recommend_for(user, 5, category=blank)) == everything
    client = client_for(user)
    me = client.get(f"{API}me/", {"category": "", "max_results": 5}).json()
    assert [r["business_id"] for r in me["recommendations"]] == everything
    popular = client.get(f"{API}popular/", {"category": ""}).json()["results"]
    assert len(popular) == len(client.get(f"{API}popular/").json()["results"]) > 0


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["page=abc", "page=0", "page=-1", "page=%C2%B2",
                                   "page_size=%C2%B2"])
def test_a_bad_page_is_a_400_naming_it(world, query):
    user = world["coffee_people"][0]
    response = client_for(user).get(f"{API}user/{user.pk}/interactions/?{query}")
    assert response.status_code == 400
    assert set(response.json()) == {query.split("=")[0]}


@pytest.mark.django_db
def test_the_last_page_and_a_page_past_it(world):
    user = world["coffee_people"][0]
    client = client_for(user)
    last = client.get(f"{API}user/{user.pk}/interactions/?page=last&page_size=2")
    assert last.status_code == 200 and len(last.json()["results"]) == 1  # 3 likes
    past = client.get(f"{API}user/{user.pk}/interactions/?page=9")
    assert past.status_code == 404 and past["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_a_non_finite_weight_cannot_be_stored_around_the_checks(world):
    """Raw SQL could store what ``record_interaction`` refuses (PostgreSQL's old CHECK
    passed NaN and infinity; the list then had to answer them as ``null``): the table
    refuses them now, and the list is unchanged."""
    from django.db import IntegrityError, connection, transaction

    user = world["coffee_people"][0]
    before = client_for(user).get(f"{API}user/{user.pk}/interactions/").json()["results"]
    odd = [float("inf")] + ([float("nan")] if connection.vendor == "postgresql" else [])
    for value in odd:
        with pytest.raises(IntegrityError), transaction.atomic():
            Interaction.objects.filter(user_id=user.pk).update(weight=value)
        response = client_for(user).get(f"{API}user/{user.pk}/interactions/")
        assert response.status_code == 200 and response.json()["results"] == before
    assert all(isinstance(row["weight"], float) for row in before)


@pytest.mark.django_db
def test_a_business_moved_out_of_a_category_since_the_rebuild_is_not_listed_under_it(world):
    """The model filters by the categories it was trained with, the page shows today's:
    a café re-categorised as a bookshop must not be listed under "Coffee" any more."""
    from tests.factories import CategoryFactory

    user = UserFactory(interests=["coffee"], home_latitude=ATL[0], home_longitude=ATL[1])
    moved = world["cafes"][3]
    assert moved.pk in ids(recommend_for(user, 5, category="Coffee"))
    moved.categories.set([CategoryFactory(name="Tea", slug="tea")])
    moved.save()  # the host's edit (its signal retires the cached lists)
    assert moved.pk not in ids(recommend_for(user, 5, category="coffee"))
    popular = client_for(user).get(f"{API}popular/", {"category": "Coffee"}).json()
    assert moved.pk not in [r["business_id"] for r in popular["results"]]
    assert all("Coffee" in r["categories"] for r in popular["results"])
