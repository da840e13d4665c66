"""The example project's Celery app (Celery's Django guide).

Start a worker with ``celery -A example_project worker -l info`` once
``CELERY_BROKER_URL`` is set; without it, xo_recommender runs its tasks inline.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
