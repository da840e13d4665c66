"""factory-boy factories for the host models (the example project's) and Interaction."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from example_project.xo_black.models import Business, Category
from xo_recommender.models import Interaction


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    interests = factory.List(["coffee", "books"])
    home_latitude = 33.749
    home_longitude = -84.388


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class BusinessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Business
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"business-{n}")
    name = factory.Sequence(lambda n: f"Business {n}")
    tags = factory.List(["family-owned"])
    latitude = 33.75
    longitude = -84.39
    popularity_score = 10.0
    rating = 4.5
    is_active = True

    @factory.post_generation
    def categories(self, create, extracted, **kwargs):
        if create and extracted:
            self.categories.set(extracted)


class InteractionFactory(factory.django.DjangoModelFactory):
    """Direct rows, for tests that need history; production code uses record_interaction."""

    class Meta:
        model = Interaction

    user = factory.SubFactory(UserFactory)
    business = factory.SubFactory(BusinessFactory)
    interaction_type = "view"
    weight = 1.0
    count = 1
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyAttribute(lambda o: o.first_seen)


ATL = (33.749, -84.388)
NYC = (40.713, -74.006)


def coffee_and_books() -> dict:
    """Two taste groups in Atlanta, coffee people and book people, each engaged with
    three of four places of their kind; and one café far away, in New York."""
    from xo_recommender import record_interaction

    coffee = CategoryFactory(name="Coffee", slug="coffee")
    books = CategoryFactory(name="Books", slug="books")
    cafes = [BusinessFactory(name=f"Cafe {i}", categories=[coffee], latitude=ATL[0] + i / 100,
                             longitude=ATL[1], popularity_score=10 + i) for i in range(4)]
    shops = [BusinessFactory(name=f"Bookshop {i}", categories=[books], tags=["reading"],
                             latitude=ATL[0] - i / 100, longitude=ATL[1], popularity_score=5)
             for i in range(4)]
    far_cafe = BusinessFactory(name="Far Cafe", categories=[coffee], latitude=NYC[0],
                               longitude=NYC[1], popularity_score=1)
    coffee_people = [UserFactory(interests=["coffee"]) for _ in range(6)]
    book_people = [UserFactory(interests=["books"]) for _ in range(6)]
    for u in coffee_people:
        for b in cafes[:3]:
            record_interaction(u, b, "like")
    for u in book_people:
        for b in shops[:3]:
            record_interaction(u, b, "save")
    return {"cafes": cafes, "shops": shops, "far_cafe": far_cafe,
            "coffee_people": coffee_people, "book_people": book_people}
