"""A real Celery worker, over the Redis broker, runs a rebuild; the new version is served."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import BusinessFactory, UserFactory
from xo_recommender import artifacts, cache, record_interaction
from xo_recommender.models import ModelVersion
from xo_recommender.services import rebuild, recommendation_payload

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/13")


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker(settings):
    """A worker process on a queue of its own; the app in this process sends to it."""
    from celery import current_app

    queue = f"xo-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": BROKER,
           "DJANGO_SETTINGS_MODULE": "example_project.settings", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "example_project", "worker", "--pool", "solo",
         "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    conf = current_app.conf
    saved = (conf.broker_url, conf.task_always_eager, conf.task_default_queue)
    conf.broker_url, conf.task_always_eager, conf.task_default_queue = BROKER, False, queue
    try:
        yield proc
    finally:
        conf.broker_url, conf.task_always_eager, conf.task_default_queue = saved
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


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
