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
