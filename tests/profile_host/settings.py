"""The example project with its members' profiles as the recommender's users, on an
SQLite file of its own (``PROFILE_HOST_DB``) and a local-memory cache."""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import INSTALLED_APPS, XO_RECOMMENDER

INSTALLED_APPS = [*INSTALLED_APPS, "tests.profile_host"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ["PROFILE_HOST_DB"]}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
XO_RECOMMENDER_USER_MODEL = "profile_host.Profile"
XO_RECOMMENDER = {**XO_RECOMMENDER, "USER_FIELDS": {},  # the profile's names are ours
                  "REQUEST_USER_FIELD": os.environ.get("REQUEST_USER_FIELD", "account"),
                  "ACTIVE_CHECK_BACKGROUND": False}
