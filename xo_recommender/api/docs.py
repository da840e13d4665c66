"""Pages about the API: an index of its endpoints, Swagger UI and Redoc.

The docs use drf-spectacular-sidecar's copies of Swagger UI and Redoc whatever the
host's ``SPECTACULAR_SETTINGS`` say, and load nothing from elsewhere (no CDN, no web
fonts, no validator badge), so they work offline. Every page
finds the schema beside itself (``…/schema/``), so the host may mount the app under
any prefix or namespace. None of these views is part of the schema it serves.
"""

from __future__ import annotations

import html
import re
from typing import Any

from django.templatetags.static import static
from django.utils.safestring import mark_safe
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import get_view_description as drf_view_description

from xo_recommender import __version__
from xo_recommender.api.errors import JsonErrors

#: (name, path under the mount point, method, who may call it, what it answers)
ENDPOINTS: list[tuple[str, str, str, str, str]] = [
    ("recommendations", "{user_id}/", "GET", "owner, service", "a user's recommendations"),
    ("me", "me/", "GET", "signed in", "the signed-in user's recommendations"),
    ("popular", "popular/", "GET", "signed in", "popular businesses, optionally near a point"),
    ("similar", "businesses/{business_id}/similar/", "GET", "signed in",
     "businesses similar to one"),
    ("interactions", "user/{user_id}/interactions/", "GET", "owner, service",
     "a user's interactions, newest first"),
    ("record_interaction", "interaction/", "POST", "owner, service",
     "record one interaction or a list"),
    ("sync_user", "sync/user/", "POST", "service", "the host changed a user"),
    ("sync_business", "sync/business/", "POST", "service", "the host changed a business"),
    ("clear_cache", "cache/clear/{user_id}/", "POST", "service", "forget a user's cached results"),
    ("health", "health/", "GET", "anyone", "database, cache and broker status"),
    ("schema", "schema/", "GET", "anyone", "OpenAPI 3 schema (YAML; ?format=json)"),
    ("docs", "docs/", "GET", "anyone", "Swagger UI"),
    ("redoc", "redoc/", "GET", "anyone", "Redoc"),
]

SIDECAR = "drf_spectacular_sidecar/"
_LITERAL = re.compile(r"``(.+?)``")


def view_description(view: Any, html_output: bool = False) -> str:
    """DRF's view description with reST literals (````x````) shown as code, not backticks.

    Set ``REST_FRAMEWORK["VIEW_DESCRIPTION_FUNCTION"]`` to this so the browsable API
    shows the docstrings as text.
    """
    text = drf_view_description(view, html=False)
    if not html_output:
        return _LITERAL.sub(r"\1", text)
    escaped = html.escape(text)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", escaped) if p.strip()]
    code = r"<code>\1</code>"
    return mark_safe("".join(f"<p>{_LITERAL.sub(code, p)}</p>" for p in paragraphs))


def _mount_point(request: Request, own_suffix: str) -> str:
    """The path the host mounted the app at, from this page's own path."""
    path = request.path
    return path[: len(path) - len(own_suffix)] if own_suffix and path.endswith(own_suffix) \
        else path


class ApiIndexView(APIView):
    """The recommender's endpoints, their methods and who may call them."""

    schema = None
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    def get_view_name(self) -> str:
        return "Recommender API"

    def get_view_description(self, html: bool = False) -> str:
        return view_description(self, html)

    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri(_mount_point(request, ""))
        return Response({
            "name": "xo_recommender",
            "version": __version__,
            "endpoints": [
                {"name": name, "method": method, "url": base + rel,
                 "who": who, "answers": what}
                for name, rel, method, who, what in ENDPOINTS
            ],
        })


class _SchemaBeside:
    """The schema is ``schema/`` next to this page, wherever the host mounted the app."""

    page_suffix = ""

    def _get_schema_url(self, request: Request) -> str:
        return _mount_point(request, self.page_suffix) + "schema/"


class SwaggerView(JsonErrors, _SchemaBeside, SpectacularSwaggerView):
    """Swagger UI over this app's schema, from the sidecar's self-hosted files."""

    schema = None
    metadata_class = None  # OPTIONS: 405, not the page's template without data
    page_suffix = "docs/"
    permission_classes = [AllowAny]
    title = "Recommender API"

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """No spec validator badge: Swagger UI would send the schema's URL to swagger.io."""
        response = super().get(request, *args, **kwargs)
        configured = spectacular_settings.SWAGGER_UI_SETTINGS
        if isinstance(configured, dict) and "validatorUrl" not in configured:
            response.data["settings"] = self._dump({**configured, "validatorUrl": None})
        return response

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(SIDECAR + f"swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static(SIDECAR + "swagger-ui-dist/favicon-32x32.png")


class RedocView(JsonErrors, _SchemaBeside, SpectacularRedocView):
    """Redoc over this app's schema, from the sidecar's self-hosted files."""

    schema = None
    metadata_class = None  # OPTIONS: 405, not the page's template without data
    page_suffix = "redoc/"
    permission_classes = [AllowAny]
    title = "Recommender API"
    template_name = "xo_recommender/redoc.html"  # without the web fonts from elsewhere

    @staticmethod
    def _redoc_standalone() -> str:
        return static(SIDECAR + "redoc/bundles/redoc.standalone.js")
