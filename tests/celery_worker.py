"""A real Celery worker for the tests that need one: its own process and queue.

Shared by the rebuild, ingestion and retry tests so that starting, pointing this
process's app at it and stopping it is written once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/13")


def database_url() -> str:
    """The test database as a URL the worker process can open."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def celery_worker(*, database: str | None = None, keep_cache: bool = False
                  ) -> Iterator[subprocess.Popen]:
    """A worker on a queue of its own, with this process's app sending to it.

    ``database``: the URL the worker uses (default: the test database); ``keep_cache``
    leaves ``REDIS_URL`` to the worker (without it the worker caches in memory).
    """
    from celery import current_app

    queue = f"xo-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": database or database_url(),
           "CELERY_BROKER_URL": BROKER, "DJANGO_SETTINGS_MODULE": "example_project.settings",
           "PYTHONPATH": str(ROOT)}
    if not keep_cache:
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
