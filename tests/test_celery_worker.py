"""A real Celery worker, over the Redis broker, runs a rebuild; the new version is served."""

import time

import pytest

from tests.celery_worker import celery_worker
from tests.factories import BusinessFactory, UserFactory
from xo_recommender import artifacts, cache, record_interaction
from xo_recommender.models import ModelVersion
from xo_recommender.services import rebuild, recommendation_payload


@pytest.fixture
def worker(settings):
    """A worker process on a queue of its own; the app in this process sends to it."""
    with celery_worker() as proc:
        yield proc


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_rebuild_task_and_the_new_version_is_served(worker):
    from xo_recommender.tasks import broker_configured, enqueue, rebuild_recommendations

    cafes = [BusinessFactory() for _ in range(4)]
    users = [UserFactory() for _ in range(3)]
    for u in users:
        for b in cafes[:2]:
            record_interaction(u, b, "like")
    first = rebuild()
    artifacts.forget_loaded()
    assert recommendation_payload(users[0].pk, 2)["model_version"] == first.pk

    assert broker_configured()
    enqueue(rebuild_recommendations)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        active = ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True).first()
        if active != first.pk:
            break
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.25)
    else:
        worker.terminate()
        pytest.fail("the worker did not finish the rebuild: " + worker.communicate()[0][-2000:])

    new = ModelVersion.objects.get(is_active=True)
    assert new.pk != first.pk and new.status == "ready"
    time.sleep(cache.MODEL_VERSION_SECONDS)  # the published id may be cached per process
    assert recommendation_payload(users[0].pk, 2)["model_version"] == new.pk
