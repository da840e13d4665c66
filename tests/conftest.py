import copy
import uuid

import pytest

from tests.factories import BusinessFactory, CategoryFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def business(db):
    return BusinessFactory(categories=[CategoryFactory(name="Coffee", slug="coffee")])


@pytest.fixture(autouse=True)
def _fresh_recommender_state():
    """Each test starts from the configured settings, with no model, no active flags and
    no list of newcomers in memory.

    The in-process model is keyed by version id, and the flags by business id, which a
    rolled-back test database hands out again.
    """
    from xo_recommender import artifacts
    from xo_recommender.conf import settings
    from xo_recommender.services import newcomers
    from xo_recommender.services.active_flags import forget_active_flags

    settings.reload()
    artifacts.forget_loaded()
    forget_active_flags()
    newcomers.forget()
    yield
    settings.reload()
    artifacts.forget_loaded()
    forget_active_flags()
    newcomers.forget()


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """A cache namespace of this test's own: cache keys hold primary keys, which a
    rolled-back database reuses, so one test could otherwise read another's answers."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"xo-test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _closed_cache_breaker():
    """A test that broke the cache leaves no open breaker or pending invalidation behind."""
    from xo_recommender import cache

    cache.reset_breaker()
    yield
    cache.reset_breaker()


@pytest.fixture(autouse=True)
def _fresh_broker_probe():
    """The broker probe's few-second memory does not carry from one test to the next."""
    import importlib

    # the module, not the function ``services.health`` that the package re-exports
    importlib.import_module("xo_recommender.services.health").forget_broker_probe()
    yield
