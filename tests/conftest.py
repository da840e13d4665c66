import pytest

from tests.factories import BusinessFactory, CategoryFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def business(db):
    return BusinessFactory(categories=[CategoryFactory(name="Coffee", slug="coffee")])


@pytest.fixture(autouse=True)
def _fresh_recommender_settings():
    """Each test starts from the settings as configured (override_settings reloads too)."""
    from xo_recommender.conf import settings

    settings.reload()
    yield
    settings.reload()
