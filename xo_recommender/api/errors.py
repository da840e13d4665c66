"""Every error of the API as JSON: faults as 503, bad bodies as 4xx, the rest logged.

DRF's own handler knows its ``APIException`` family and Django's ``Http404`` and
``PermissionDenied``; anything else escapes it and Django answers an HTML 500. The
recommender's views use :func:`exception_handler` instead (they do not rely on the
host's ``REST_FRAMEWORK`` setting), so that

* a database that refuses, drops the connection, times out a statement or is locked
  (``OperationalError`` / ``InterfaceError``) — in authentication too — answers
  ``503 {"code": "database_unavailable"}`` with ``Retry-After``;
* a body nested too deep for the parser answers 400, a body over the limit 413;
* any other exception is logged with its traceback and answered ``500`` JSON that
  carries no exception text.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger("xo_recommender.api")

#: Seconds a client is told to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "body_too_large"


class BodyTooDeep(ParseError):
    default_detail = "The JSON body is nested too deeply."
    default_code = "body_too_deep"


def _error(status_code: int, detail: str, code: str, **headers: str) -> Response:
    return Response({"detail": detail, "code": code}, status=status_code, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's handler, extended so that no exception leaves the API as HTML."""
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("Database unavailable during %s: %s", _where(context), exc)
        set_rollback()
        return _error(503, "The database is unavailable; try again shortly.",
                      "database_unavailable", **{"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, RequestDataTooBig):
        request = context.get("request")
        drain(getattr(request, "_request", None))
        exc = BodyTooLarge()
    elif isinstance(exc, RecursionError):
        exc = BodyTooDeep()
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    logger.error("Unhandled error during %s", _where(context), exc_info=exc)
    set_rollback()
    return _error(500, "Internal error.", "internal_error")


#: Most of a refused body read and thrown away, so that a client still sending it
#: receives the 413 instead of a connection reset; beyond it the connection is cut.
DRAIN_BYTES = 64 * 2**20


class JsonErrors:
    """A view mixin: its errors are answered by :func:`exception_handler` and rendered as
    JSON, whatever the view renders when it succeeds (the schema's YAML, the docs' HTML)
    or the client asked for (``?format=``, ``Accept: text/html``)."""

    def get_exception_handler(self) -> Any:
        return exception_handler

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def drain(stream: Any) -> None:
    """Read and discard what is left of a request body (up to ``DRAIN_BYTES``)."""
    left = DRAIN_BYTES
    try:
        while stream is not None and left > 0:
            chunk = stream.read(min(left, 2**20))
            if not chunk:
                return
            left -= len(chunk)
    except Exception:  # a broken stream: the connection is cut anyway
        return


def _where(context: dict[str, Any]) -> str:
    request = context.get("request")
    return f"{request.method} {request.path}" if request is not None else "an API call"


@csrf_exempt  # a POST to an unknown path is a 404, not the CSRF middleware's HTML 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The API's own 404 for a path none of its routes match (``-1/``, ``nope/``)."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
