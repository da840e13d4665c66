"""Test settings: the example project, with the database and cache from the environment.

``make test`` points ``DATABASE_URL`` at PostgreSQL and ``REDIS_URL`` at Redis;
``make test-sqlite`` leaves ``DATABASE_URL`` unset for the embedded SQLite default.
"""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import CACHES, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if not os.environ.get("DATABASE_URL"):
    DATABASES["default"]["NAME"] = os.environ.get("SQLITE_PATH", "xo_test.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SQLITE_TEST_PATH", "xo_test.sqlite3")}

# Keys of parallel or repeated runs never meet in a shared Redis.
if "django_redis" in CACHES["default"]["BACKEND"]:
    CACHES["default"]["KEY_PREFIX"] = f"xo-test-{os.getpid()}"

CELERY_TASK_ALWAYS_EAGER = True

# The hits read the active flags themselves: a refresher thread's own connection would
# not see a test's uncommitted rows (tests/test_hit_path.py turns it on where it tests it).
XO_RECOMMENDER = {**XO_RECOMMENDER, "ACTIVE_CHECK_BACKGROUND": False}  # noqa: F405
