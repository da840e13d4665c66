"""Settings for the example project, a small XO Black stand-in.

Environment:

* ``DATABASE_URL`` — default: a SQLite file beside this module (the embedded default).
* ``REDIS_URL`` — when set, django-redis is the cache; otherwise local memory.
* ``CELERY_BROKER_URL`` — when set, tasks go to Celery; otherwise they run inline.
* ``XO_THROTTLE_READ`` / ``XO_THROTTLE_WRITE`` — API rates per user (DRF rate strings).
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "example_project.xo_black",
    "xo_recommender",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'demo.sqlite3'}",
        conn_max_age=60,
        # A persistent connection the server dropped is replaced before the request
        # uses it, instead of failing that request.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several writers at once (threads, the dev server): wait instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "xo"),
            # Short timeouts: a hung Redis costs a request at most ~0.5 s, after which
            # the recommender's circuit breaker skips the cache for a few seconds.
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient",
                        "SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL  # no broker: the same code runs inline
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None

AUTH_USER_MODEL = "xo_black.User"

# The recommender: the host's business model and the host field names that differ.
XO_RECOMMENDER_BUSINESS_MODEL = "xo_black.Business"
XO_RECOMMENDER = {
    "USER_FIELDS": {
        "interests": "interests",
        "latitude": "home_latitude",
        "longitude": "home_longitude",
    },
    "BUSINESS_FIELDS": {
        "categories": "categories__name",
        "tags": "tags",
        "popularity": "popularity_score",
    },
}

# The recommender's API (mounted at /api/recommend/) follows these. Token for programs
# (``Authorization: Token <key>``; create keys in the admin or with ``drf_create_token``),
# sessions for the browsable API after signing in to the admin. Token comes first so an
# anonymous request gets 401 with a ``WWW-Authenticate`` header rather than 403.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per user (per IP when anonymous). Generous defaults so benchmarks measure the
    # recommender, not the throttle; a public deployment would set e.g. 120/min, 60/min.
    "DEFAULT_THROTTLE_RATES": {
        "xo_recommender_read": os.environ.get("XO_THROTTLE_READ", "100000/min"),
        "xo_recommender_write": os.environ.get("XO_THROTTLE_WRITE", "50000/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "XO Black recommendations API",
    "DESCRIPTION": "Personalised business recommendations (xo_recommender).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "admin:login"
