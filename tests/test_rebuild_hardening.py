"""Rebuilds under faults: an orphaned ``building`` version is marked failed by the next
rebuild; ``--async`` with the broker down is one clear line and a non-zero exit; the task
retries a transient database error (in a real worker too)."""

import importlib
import os
import subprocess
import sys
import time

import pytest
from django.db import OperationalError, connection

from tests.celery_worker import ROOT, celery_worker, database_url
from tests.factories import BusinessFactory, UserFactory
from tests.faults import free_port
from xo_recommender import record_interaction
from xo_recommender.models import ModelVersion
from xo_recommender.services import rebuild


@pytest.fixture
def data(db):
    cafes = [BusinessFactory() for _ in range(4)]
    for user in [UserFactory() for _ in range(3)]:
        for business in cafes[:2]:
            record_interaction(user, business, "like")


def test_next_rebuild_marks_an_orphaned_building_version_failed(data):
    orphan = ModelVersion.objects.create()  # left "building" by a rebuild that died
    if connection.vendor != "postgresql":  # no lock to prove it: only old ones count
        ModelVersion.objects.filter(pk=orphan.pk).update(
            created_at=orphan.created_at.replace(year=orphan.created_at.year - 1))
    seen = []

    def progress(message):
        if not seen:
            seen.append(ModelVersion.objects.values_list("status", "error").get(pk=orphan.pk))

    version = rebuild(progress=progress)
    status, error = seen[0]
    assert status == "failed" and "Orphaned" in error  # (then pruned like any failed one)
    assert version.status == "ready" and version.is_active
    assert not ModelVersion.objects.filter(status="building").exists()


@pytest.mark.parametrize(("broker", "says"), [
    ("redis://127.0.0.1:{port}/0", "Cannot reach the Celery broker"),
    ("bogus://127.0.0.1:{port}/0", "The Celery broker URL cannot be used"),
])
def test_async_rebuild_with_the_broker_down_exits_non_zero_with_one_line(db, broker, says):
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE":
           "example_project.settings", "PYTHONPATH": str(ROOT),
           "CELERY_BROKER_URL": broker.format(port=free_port()),
           # a shared cache, or check W003 (rightly) warns first on the SQLite run
           "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"}
    done = subprocess.run([sys.executable, "manage.py", "rebuild_recommendations", "--async"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_the_task_retries_a_transient_database_error(data, monkeypatch):
    rebuild_module = importlib.import_module("xo_recommender.services.rebuild")
    from xo_recommender.tasks import rebuild_recommendations

    calls = []
    real_train = rebuild_module._train

    def flaky_train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly (injected)")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(rebuild_module, "_train", flaky_train)
    monkeypatch.setattr("xo_recommender.tasks.RETRY_BASE_SECONDS", 0.01)
    result = rebuild_recommendations.apply(throw=True)  # inline: retried in place
    assert len(calls) == 2
    assert ModelVersion.objects.get(pk=result.result).is_active
    assert not ModelVersion.objects.filter(status="building").exists()


def test_the_task_does_not_retry_a_bug(data, monkeypatch):
    from xo_recommender.exceptions import RebuildFailed
    rebuild_module = importlib.import_module("xo_recommender.services.rebuild")
    from xo_recommender.tasks import rebuild_recommendations

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise ValueError("a bug")

    monkeypatch.setattr(rebuild_module, "_train", broken)
    with pytest.raises(RebuildFailed):
        rebuild_recommendations.apply(throw=True)
    assert len(calls) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a database over TCP")
def test_a_real_worker_retries_the_rebuild_after_the_database_was_unreachable(data):
    import threading

    from tests.faults import TcpProxy
    from xo_recommender.tasks import enqueue, rebuild_recommendations

    s = connection.settings_dict
    proxy = TcpProxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432))  # not listening yet
    url = database_url().replace(f":{s['PORT'] or 5432}/", f":{proxy.port}/")
    lines: list[str] = []
    try:
        with celery_worker(database=url) as worker:
            threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True).start()
            enqueue(rebuild_recommendations)
            deadline = time.monotonic() + 60
            while not any("transient database error" in line for line in lines):
                assert time.monotonic() < deadline, "".join(lines)[-2000:]
                time.sleep(0.1)
            proxy.open()  # the database is back before the retry (2 s later)
            while not ModelVersion.objects.filter(is_active=True).exists():
                assert time.monotonic() < deadline, "".join(lines)[-2000:]
                time.sleep(0.2)
    finally:
        proxy.close()
    assert ModelVersion.objects.get(is_active=True).status == "ready"


def test_the_task_retries_after_2_4_and_8_seconds_then_gives_up(data, monkeypatch):
    from xo_recommender.exceptions import RebuildFailed
    rebuild_module = importlib.import_module("xo_recommender.services.rebuild")
    from xo_recommender.tasks import rebuild_recommendations

    def down(*args, **kwargs):
        raise OperationalError("the database is restarting (injected)")

    slept = []
    monkeypatch.setattr(rebuild_module, "_train", down)
    monkeypatch.setattr("xo_recommender.tasks.time.sleep", slept.append)
    with pytest.raises(RebuildFailed):
        rebuild_recommendations.apply(throw=True)
    assert slept == [2, 4, 8]  # three retries, doubling, then the failure is final
    assert not ModelVersion.objects.filter(status="building").exists()


@pytest.mark.django_db(transaction=True)
def test_rebuilds_run_one_at_a_time_on_postgresql(data):
    """Another session holding the rebuild lock (a rebuild running elsewhere) makes this
    one wait for it, instead of training beside it."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("the lock is PostgreSQL's advisory lock")
    rebuild_module = importlib.import_module("xo_recommender.services.rebuild")
    other = connections.create_connection("default")
    finished = []
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [rebuild_module.REBUILD_LOCK_KEY])

        def run():
            try:
                finished.append(rebuild().pk)
            finally:
                connections.close_all()

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(timeout=3)
        assert worker.is_alive() and not finished  # waiting for the lock
        assert not ModelVersion.objects.filter(status="building").exists()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [rebuild_module.REBUILD_LOCK_KEY])
        worker.join(timeout=120)
        assert finished and ModelVersion.objects.get(pk=finished[0]).is_active
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)  # no open transaction: SQLite lets it write
def test_a_site_without_businesses_is_told_what_to_do_and_no_version_is_left():
    """The install's third command on a fresh host: one clear line, no LAPACK noise,
    no failed version row per try."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE":
           "example_project.settings", "PYTHONPATH": str(ROOT),
           "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"}
    env.pop("CELERY_BROKER_URL", None)
    done = subprocess.run([sys.executable, "manage.py", "rebuild_recommendations"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == ("CommandError: There are no businesses in the host's "
                                   "business table yet, so there is nothing to recommend: "
                                   "add businesses, then rebuild.")
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_an_infinite_host_popularity_counts_as_unknown_not_as_the_largest():
    """One business whose popularity_score is infinite must not scale every other
    business's popularity to nothing (the signals are divided by the largest)."""
    from xo_recommender import snapshot

    shops = [BusinessFactory(popularity_score=p) for p in (5.0, 50.0, float("inf"))]
    catalogue = snapshot.load_catalogue()
    by_id = dict(zip(catalogue.ids.tolist(), catalogue.popularity.tolist(), strict=True))
    assert [by_id[s.pk] for s in shops] == [5.0, 50.0, 0.0]
