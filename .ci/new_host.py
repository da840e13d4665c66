"""A brand-new host, set up only as the README's "Install into an existing project" says.

Run by ``.ci/wheel_check.sh`` with the python of a virtualenv that has just the wheel:
``django-admin startproject``, a minimal business app whose field names all differ
from the recommender's, Django's own ``auth.User``; then ``check`` (which must name
``DEFAULT_SCHEMA_CLASS`` when it is missing), ``migrate``, ``rebuild_recommendations``
and every endpoint, schema and docs included, expecting 2xx.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

MODELS = '''
from django.db import models


class Place(models.Model):
    title = models.CharField(max_length=100)
    kinds = models.JSONField(default=list)
    lat = models.FloatField(null=True)
    lng = models.FloatField(null=True)
    stars = models.FloatField(null=True)
    visits = models.IntegerField(default=0)
    open_now = models.BooleanField(default=True)
'''

# The README's settings lines, with this host's names.
SETTINGS = '''

INSTALLED_APPS += ["rest_framework", "rest_framework.authtoken", "drf_spectacular",
                   "drf_spectacular_sidecar", "xo_recommender", "shop"]
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}
if __import__("os").environ.get("DROP_SCHEMA_CLASS"):
    REST_FRAMEWORK = {}
XO_RECOMMENDER_BUSINESS_MODEL = "shop.Place"
XO_RECOMMENDER = {
    "USER_FIELDS": {"interests": None, "latitude": None, "longitude": None},
    "BUSINESS_FIELDS": {"name": "title", "categories": "kinds", "tags": None,
                        "latitude": "lat", "longitude": "lng", "popularity": "visits",
                        "rating": "stars", "is_active": "open_now"},
}
'''

URLS = '''
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/recommend/", include("xo_recommender.api.urls")),
]
'''


def manage(root: Path, *args: str, env: dict | None = None, check: bool = True):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=root, text=True,
                          capture_output=True, check=check, env={**os.environ, **(env or {})})


def build(root: Path) -> None:
    root.mkdir(parents=True)
    admin = Path(sys.executable).with_name("django-admin")
    subprocess.run([str(admin), "startproject", "newhost", str(root)], check=True)
    (root / "shop" / "migrations").mkdir(parents=True)
    (root / "shop" / "__init__.py").touch()
    (root / "shop" / "migrations" / "__init__.py").touch()
    (root / "shop" / "models.py").write_text(textwrap.dedent(MODELS))
    with (root / "newhost" / "settings.py").open("a") as settings:
        settings.write(SETTINGS)
    (root / "newhost" / "urls.py").write_text(textwrap.dedent(URLS))


def exercise() -> int:
    """Seed a little, rebuild, and call every endpoint as a signed-in superuser."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.contrib.staticfiles import finders
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token
    from shop.models import Place

    from xo_recommender import record_interaction

    places = [Place.objects.create(title=f"Place {i}", kinds=["food" if i % 2 else "books"],
                                   lat=33.7 + i / 100, lng=-84.4, stars=4.0, visits=i)
              for i in range(8)]
    people = [User.objects.create_user(f"u{i}") for i in range(5)]
    for n, person in enumerate(people):
        for place in places[n % 2::2]:
            record_interaction(person, place, "like")
    call_command("rebuild_recommendations", verbosity=0)
    client = Client(HTTP_HOST="localhost")  # DEBUG and empty ALLOWED_HOSTS, as created
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "x"))
    u, b = people[0].pk, places[0].pk
    gets = ["", "schema/", "schema/?format=json", "docs/", "redoc/", "health/", f"{u}/",
            "me/", "popular/", f"businesses/{b}/similar/", f"user/{u}/interactions/"]
    posts = {"interaction/": {"user_id": u, "business_id": b, "interaction_type": "save"},
             "sync/user/": {"user_id": u}, "sync/business/": {"business_id": b},
             f"cache/clear/{u}/": None}
    failed = []
    for rel in gets:
        response = client.get("/api/recommend/" + rel)
        if response.status_code != 200:
            failed.append(f"GET {rel}: {response.status_code}")
    for rel, body in posts.items():
        response = client.post("/api/recommend/" + rel, body, content_type="application/json")
        if response.status_code not in (200, 201):
            failed.append(f"POST {rel}: {response.status_code}")
    # a client as the README's API reference shows it: a user with a token, no session
    key = Token.objects.get_or_create(user=people[1])[0].key
    with_token = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")
    for rel in ("me/", f"{people[1].pk}/"):
        response = with_token.get("/api/recommend/" + rel)
        if response.status_code != 200 or response.json()["user_id"] != people[1].pk:
            failed.append(f"GET {rel} with a token: {response.status_code}")
    if not finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"):
        failed.append("the sidecar's Swagger UI files are not found by staticfiles")
    if failed:
        print("new host failures:", *failed, sep="\n  ", file=sys.stderr)
        return 1
    print(f"a new startproject host answers all {len(gets) + len(posts)} endpoints, "
          "and a client with a token")
    return 0


def main() -> int:
    root = Path(sys.argv[1])
    build(root)
    unset = manage(root, "check", env={"DROP_SCHEMA_CLASS": "1"}, check=False)
    if unset.returncode == 0 or "xo_recommender.E010" not in unset.stderr + unset.stdout:
        print("check did not name DEFAULT_SCHEMA_CLASS (xo_recommender.E010):",
              unset.stdout, unset.stderr, file=sys.stderr)
        return 1
    manage(root, "makemigrations", "shop")
    manage(root, "migrate", "--noinput")
    manage(root, "check", "--fail-level", "WARNING")
    sys.path.insert(0, str(root))
    os.environ["DJANGO_SETTINGS_MODULE"] = "newhost.settings"
    return exercise()


if __name__ == "__main__":
    sys.exit(main())
