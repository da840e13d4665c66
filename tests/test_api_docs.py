"""The API's own pages: an index of endpoints, Swagger UI and Redoc with local assets."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from xo_recommender.api import docs
from xo_recommender.api.views import RecommendationViewSet


def test_index_lists_every_endpoint_as_json_without_signing_in(client):
    response = client.get("/api/recommend/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    urls = {e["name"]: e["url"] for e in body["endpoints"]}
    assert urls["recommendations"] == "http://testserver/api/recommend/{user_id}/"
    assert urls["health"] == "http://testserver/api/recommend/health/"
    wanted = {"me", "popular", "similar", "record_interaction", "schema", "docs", "redoc"}
    assert wanted <= set(urls)


def test_index_is_browsable(client):
    page = client.get("/api/recommend/", HTTP_ACCEPT="text/html").content.decode()
    assert "Recommender API" in page and "/api/recommend/health/" in page


@pytest.mark.parametrize(("name", "asset"), [
    ("docs", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"),
    ("redoc", "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"),
])
def test_docs_pages_use_self_hosted_assets_and_find_the_schema_beside_them(client, name, asset):
    response = client.get(reverse(f"xo_recommender:{name}"))
    page = response.content.decode()
    assert response.status_code == 200
    assert f"/static/{asset}" in page and finders.find(asset)  # served locally
    assert not re.findall(r'(?:src|href)="https?://', page)  # nothing from elsewhere
    assert "googleapis" not in page
    assert "/api/recommend/schema/" in page
    assert client.get("/api/recommend/schema/").status_code == 200


def test_descriptions_show_literals_as_code_not_backticks():
    view = RecommendationViewSet()
    text = docs.view_description(view)
    assert "``" not in text and "GET {user_id}/" in text
    html = docs.view_description(view, html_output=True)
    assert "<code>GET {user_id}/</code>" in html and "``" not in html
    assert docs.view_description(type("V", (), {"__doc__": "a < b ``c``"})(), True) == \
        "<p>a &lt; b <code>c</code></p>"


@pytest.mark.django_db
def test_browsable_api_pages_render_descriptions_as_text(client, user):
    client.force_login(user)
    page = client.get("/api/recommend/popular/", HTTP_ACCEPT="text/html").content.decode()
    assert "<code>GET popular/</code>" in page and "``GET popular/``" not in page


def test_swagger_ui_sends_the_schema_to_no_validator(client):
    page = client.get(reverse("xo_recommender:docs")).content.decode()
    assert '"validatorUrl": null' in page
