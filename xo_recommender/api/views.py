"""DRF viewsets: validate with a serializer, call one service function, return its answer.

No ORM and no engine here (see ``xo_recommender.services``). Service errors map to
HTTP: unknown or inactive user / business → 404, an ``InvalidArgument`` → 400 naming the
field, no model built yet → 503 saying to run ``rebuild_recommendations``; database
faults → 503 and anything else → a logged 500, both JSON (``api/errors.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import (
    APIException,
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from xo_recommender import services
from xo_recommender.api import serializers as s
from xo_recommender.api.errors import JsonErrors, exception_handler
from xo_recommender.api.parsers import BoundedJSONParser
from xo_recommender.api.permissions import (
    IsServiceAccount,
    RecommenderRateThrottle,
    acts_for_anyone,
    may_act_for,
)
from xo_recommender.conf import settings as rec_settings
from xo_recommender.exceptions import (
    InactiveUser,
    InvalidArgument,
    ModelNotReady,
    UnknownBusiness,
    UnknownUser,
)
from xo_recommender.identity import recommender_user_id
from xo_recommender.services._common import statement_timeout

#: A signed-in account that is none of the recommender's users (see ``identity``).
NO_RECOMMENDER_USER = "Your account is not one of the recommender's users."


class ModelUnavailable(APIException):
    """No model version is active yet: the operator must run a rebuild."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "No recommendation model has been built yet."
    default_code = "model_not_ready"


#: A service argument's name -> the query parameter a client sets for it.
_ARGUMENT_FIELDS = {"near": "lat"}


@contextmanager
def service_errors(**aliases: str) -> Iterator[None]:
    """Turn the services' documented exceptions into 4xx/503 JSON naming the field.

    ``aliases`` renames a service argument to the query parameter the client used
    (``limit="max_results"``).
    """
    try:
        yield
    except UnknownUser as exc:
        raise NotFound({"detail": str(exc), "code": "unknown_user"}) from exc
    except InactiveUser as exc:
        raise NotFound({"detail": str(exc), "code": "inactive_user"}) from exc
    except UnknownBusiness as exc:
        raise NotFound({"detail": str(exc), "code": "unknown_business"}) from exc
    except ModelNotReady as exc:
        raise ModelUnavailable({"detail": str(exc), "code": "model_not_ready"}) from exc
    except DjangoValidationError as exc:
        errors = (exc.message_dict if hasattr(exc, "error_dict")
                  else {api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
        if {"user_id", "business_id"} & set(errors):  # ids the body named do not exist
            code = "unknown_user" if "user_id" in errors else "unknown_business"
            raise NotFound({**errors, "code": code}) from exc
        raise ValidationError(errors) from exc
    except InvalidArgument as exc:
        field = _ARGUMENT_FIELDS.get(exc.field, exc.field)
        raise ValidationError({aliases.get(field, field): [str(exc)]}) from exc


def _whole(raw: str) -> bool:
    """ASCII digits only ("²" and "٣" are digits to ``str.isdigit`` but not to ``int``)."""
    return raw.isascii() and raw.isdigit()


def path_id(value: Any) -> int:
    """An id from the URL (digits only by the route); beyond a bigint nothing exists."""
    number = int(value)
    if number > s.MAX_ID:
        raise NotFound({"detail": f"No object with id {value}.", "code": "not_found"})
    return number


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """Validate ``data`` (query params or body) or answer 400 with the errors by field."""
    if hasattr(data, "dict"):  # a QueryDict: the last value of a repeated parameter wins
        data = data.dict()
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


#: Validated recommendation queries by their parameters (and ``MAX_RESULTS``, which the
#: validation reads): clients send few distinct queries, and building the serializer
#: cost a cache hit more than its round trips. Only valid queries are kept.
_RECOMMEND_QUERIES: dict[tuple, dict[str, Any]] = {}
_MAX_RECOMMEND_QUERIES = 1024


def recommend_query(params: Any) -> dict[str, Any]:
    """``validated(RecommendQuerySerializer, params)``, remembered per distinct query."""
    data = params.dict() if hasattr(params, "dict") else dict(params)
    try:
        key = (int(rec_settings.MAX_RESULTS), tuple(sorted(data.items())))
        hash(key)
    except TypeError:  # values that cannot key a dict: validate without remembering
        return validated(s.RecommendQuerySerializer, data)
    found = _RECOMMEND_QUERIES.get(key)
    if found is None:
        found = validated(s.RecommendQuerySerializer, data)
        if len(_RECOMMEND_QUERIES) >= _MAX_RECOMMEND_QUERIES:
            _RECOMMEND_QUERIES.clear()
        _RECOMMEND_QUERIES[key] = found
    return dict(found)


def _plain_json(request: Request) -> bool:
    """Whether DRF would answer with ``JSONRenderer`` as is (no ``indent``, no subclass):
    then a page rendered that way before is the same bytes."""
    return (type(request.accepted_renderer) is JSONRenderer
            and request.accepted_media_type == JSONRenderer.media_type)


def require_act_for(request: Request, user_id: int) -> None:
    """403 unless the caller is that user or a service account."""
    if not may_act_for(request.user, user_id):
        raise PermissionDenied("You may only act for yourself.")


_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid input: errors by field."),
    401: OpenApiResponse(s.ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(s.ErrorSerializer, description="Not allowed for this user."),
    404: OpenApiResponse(s.ErrorSerializer, description="Unknown or inactive user/business."),
    415: OpenApiResponse(s.ErrorSerializer, description="The body must be JSON."),
    429: OpenApiResponse(s.ErrorSerializer, description="Throttled."),
    503: OpenApiResponse(s.ErrorSerializer,
                         description="No model built yet: run rebuild_recommendations."),
}


def _responses(ok: Any, *codes: int, ok_status: int = 200) -> dict[int, Any]:
    return {ok_status: ok, **{code: _ERRORS[code] for code in (401, 403, 429, *codes)}}


def _id_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH,
                            description=description)


class RecommenderViewSet(viewsets.GenericViewSet):
    """Shared wiring: JSON bodies only (else 415), authenticated, read/write throttles."""

    schema = AutoSchema()
    parser_classes = [BoundedJSONParser]
    pagination_class = None  # the host's default paginator does not apply to our answers
    filter_backends: list[Any] = []
    permission_classes = [IsAuthenticated]
    #: Each action's request body serializer, for OPTIONS (DRF's metadata asks for one).
    body_serializers: dict[str, type] = {}

    def get_serializer_class(self) -> type:
        return self.body_serializers.get(self.action, serializers.Serializer)

    def get_exception_handler(self) -> Any:
        """Ours, whatever the host's ``REST_FRAMEWORK`` says: no error leaves as HTML."""
        return exception_handler

    def get_throttles(self) -> list[Any]:
        return [*super().get_throttles(), RecommenderRateThrottle()]


class RecommendationViewSet(RecommenderViewSet):
    """Personalised recommendations: ``GET {user_id}/`` and ``GET me/``."""

    lookup_field = "user_id"
    lookup_value_regex = "[0-9]+"
    #: The read throttle counts in the answer's cache round trip (one for both).
    throttle_with_answer = True

    def _answer(self, request: Request, user_id: int) -> Response:
        with RecommenderRateThrottle.counted(request):
            require_act_for(request, user_id)
            query = recommend_query(request.query_params)
            alias = "max_results" if "max_results" in request.query_params else "limit"
            with service_errors(limit=alias):
                page = services.recommendation_page(user_id, **query,
                                                    rendering=s.JSON_RENDERING)
        if page.body is not None and _plain_json(request):
            return HttpResponse(page.body, content_type=JSONRenderer.media_type)
        return Response(s.recommendations_data(page))

    @extend_schema(
        summary="Recommendations for a user",
        parameters=[s.RecommendQuerySerializer,
                    _id_parameter("user_id", "The host user's id.")],
        responses=_responses(s.RecommendationsResponseSerializer, 400, 404, 503),
    )
    def retrieve(self, request: Request, user_id: str) -> Response:
        return self._answer(request, path_id(user_id))

    @extend_schema(
        summary="Recommendations for the signed-in user",
        parameters=[s.RecommendQuerySerializer],
        responses=_responses(s.RecommendationsResponseSerializer, 400, 404, 503),
    )
    @action(detail=False, methods=["get"])
    def me(self, request: Request) -> Response:
        own = recommender_user_id(request.user)
        if own is None:  # a signed-in account that is none of the recommender's users
            raise PermissionDenied(NO_RECOMMENDER_USER)
        return self._answer(request, own)


_INTERACTION_BODY = PolymorphicProxySerializer(
    component_name="InteractionCreateBody",
    serializers=[s.InteractionCreateSerializer, s.InteractionCreateSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


class InteractionViewSet(RecommenderViewSet):
    """``POST interaction/``: record one event, or a list of up to ``MAX_BATCH``."""

    body_serializers = {"create": s.InteractionCreateSerializer}

    @extend_schema(
        summary="Record interactions",
        description="One InteractionCreate object, or a JSON list of up to MAX_BATCH of "
        "them. A user records only for themself (user_id may be left out); staff or "
        "xo_recommender.sync for anyone. "
        "The whole request is validated before anything is written.",
        request=_INTERACTION_BODY,
        responses={**_responses(s.RecordedSerializer, 400, 415, ok_status=201),
                   404: OpenApiResponse(OpenApiTypes.OBJECT,
                                        description="Unknown user_id or business_id.")},
    )
    def create(self, request: Request) -> Response:
        body = request.data
        if isinstance(body, list):
            maximum = int(rec_settings.MAX_BATCH)
            serializer = s.InteractionCreateSerializer(
                data=body, many=True, allow_empty=False, max_length=maximum)
        else:
            serializer = s.InteractionCreateSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data
        items = items if isinstance(items, list) else [items]
        own = recommender_user_id(request.user)
        anyone = acts_for_anyone(request.user)
        for item in items:  # left out: the signed-in user's own event
            if "user_id" not in item:
                if own is None:
                    raise PermissionDenied(NO_RECOMMENDER_USER)
                item["user_id"] = own
        if not anyone and any(item["user_id"] != own for item in items):
            raise PermissionDenied("You may only record interactions for yourself.")
        with service_errors():
            services.record_interactions(
                [s.InteractionCreateSerializer.to_event(item) for item in items])
        return Response({"status": "recorded"}, status=status.HTTP_201_CREATED)


class InteractionPagination(PageNumberPagination):
    """Newest first, 50 a page; ``page_size`` 1 to 100 and ``page`` a whole number from 1
    (or "last"): anything else is a 400 naming it, where DRF would silently fall back to
    the default size or answer 404 "Invalid page". A page past the last is still 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _whole(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [
                f"Give a whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_page_number(self, request: Request, paginator: Any) -> int:
        raw = request.query_params.get(self.page_query_param) or "1"
        if raw in self.last_page_strings:
            return paginator.num_pages
        if not _whole(raw) or int(raw) < 1:
            raise ValidationError({self.page_query_param: [
                'Give a whole number from 1 (or "last").']})
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1,
                                       "maximum": self.max_page_size}
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class UserViewSet(RecommenderViewSet):
    """``GET user/{user_id}/interactions/``: what a user did, newest first, paginated."""

    lookup_field = "user_id"
    lookup_value_regex = "[0-9]+"
    pagination_class = InteractionPagination

    def get_queryset(self) -> Any:
        """The user's interactions, newest first (also asked for by the browsable API)."""
        return services.user_interactions(path_id(self.kwargs["user_id"]))

    @extend_schema(
        summary="A user's interactions",
        parameters=[_id_parameter("user_id", "The host user's id.")],
        responses=_responses(s.InteractionSerializer(many=True), 404),
    )
    @action(detail=True, methods=["get"])
    def interactions(self, request: Request, user_id: str) -> Response:
        require_act_for(request, path_id(user_id))
        with service_errors(), statement_timeout():  # the count and the page: bounded
            page = self.paginate_queryset(self.get_queryset())
            data = s.InteractionSerializer(page, many=True).data
        return self.get_paginated_response(data)


class SyncViewSet(RecommenderViewSet):
    """``POST sync/user/`` and ``sync/business/``: the host changed a row (service only)."""

    permission_classes = [IsAuthenticated, IsServiceAccount]
    body_serializers = {"user": s.UserSyncSerializer, "business": s.BusinessSyncSerializer}

    @extend_schema(
        summary="The host changed a user",
        description="Checks the user exists and forgets what was cached for them. Extra "
        "fields of the original UserSync (interests, location, name) are accepted and "
        "ignored: the host's row is read directly.",
        request=s.UserSyncSerializer,
        responses=_responses(s.UserSyncedSerializer, 400, 404, 415),
    )
    @action(detail=False, methods=["post"])
    def user(self, request: Request) -> Response:
        data = validated(s.UserSyncSerializer, request.data)
        with service_errors():
            return Response(services.sync_user(data["user_id"]))

    @extend_schema(
        summary="The host changed a business",
        description="Checks the business exists and retires cached lists. Extra fields "
        "are accepted and ignored.",
        request=s.BusinessSyncSerializer,
        responses=_responses(s.BusinessSyncedSerializer, 400, 404, 415),
    )
    @action(detail=False, methods=["post"])
    def business(self, request: Request) -> Response:
        data = validated(s.BusinessSyncSerializer, request.data)
        with service_errors():
            return Response(services.sync_business(data["business_id"]))


class CacheViewSet(RecommenderViewSet):
    """``POST cache/clear/{user_id}/`` (service only)."""

    permission_classes = [IsAuthenticated, IsServiceAccount]

    @extend_schema(
        summary="Forget a user's cached results",
        request=None,
        parameters=[_id_parameter("user_id", "The host user's id.")],
        responses=_responses(s.CacheClearedSerializer, 404),
    )
    @action(detail=False, methods=["post"], url_path=r"clear/(?P<user_id>[0-9]+)")
    def clear(self, request: Request, user_id: str) -> Response:
        with service_errors():
            return Response(services.clear_user_cache(path_id(user_id)))


class BusinessViewSet(RecommenderViewSet):
    """``GET businesses/{business_id}/similar/``: "more like this"."""

    lookup_field = "business_id"
    lookup_value_regex = "[0-9]+"

    @extend_schema(
        summary="Businesses similar to one",
        parameters=[s.SimilarQuerySerializer,
                    _id_parameter("business_id", "The host business's id.")],
        responses=_responses(s.SimilarResponseSerializer, 400, 404, 503),
    )
    @action(detail=True, methods=["get"])
    def similar(self, request: Request, business_id: str) -> Response:
        business_id = path_id(business_id)
        query = validated(s.SimilarQuerySerializer, request.query_params)
        with service_errors():
            return Response(services.similar_businesses(business_id, query["limit"]))


class PopularViewSet(RecommenderViewSet):
    """``GET popular/``: what a newcomer sees, optionally near a point."""

    @extend_schema(
        summary="Popular businesses",
        parameters=[s.PopularQuerySerializer],
        responses=_responses(s.PopularResponseSerializer, 400, 503),
    )
    def list(self, request: Request) -> Response:
        query = validated(s.PopularQuerySerializer, request.query_params)
        with service_errors():
            return Response(services.popular_businesses(**query))


class HealthViewSet(RecommenderViewSet):
    """``GET health/``: 200 when the required parts are up, else 503; anyone may ask.

    Anonymous callers see statuses only; staff also see latencies and error details.
    No recommender throttle (the host's global throttles still apply); the broker is
    probed at most every few seconds, and the cache probe only reads.
    """

    permission_classes = [AllowAny]

    def get_throttles(self) -> list[Any]:
        return viewsets.GenericViewSet.get_throttles(self)

    def perform_authentication(self, request: Request) -> None:
        """A stale or wrong credential makes the caller anonymous here, not a 401: a load
        balancer's probe that carries an old token still learns whether the app is up."""
        try:
            request.user  # noqa: B018 - DRF authenticates on first access
        except AuthenticationFailed:
            pass  # DRF has set the anonymous user before raising

    @extend_schema(
        summary="Health of the database, cache and broker",
        responses={200: s.HealthResponseSerializer,
                   503: OpenApiResponse(s.HealthResponseSerializer,
                                        description="A required part is down.")},
    )
    def list(self, request: Request) -> Response:
        healthy, report = services.health()
        if not (request.user and request.user.is_staff):
            report = services.public_report(report)
        return Response(report, status=200 if healthy else 503)


class RecommenderSchemaView(JsonErrors, SpectacularAPIView):
    """OpenAPI 3 of this app's endpoints only, under the prefix the host mounted them at."""

    schema = None  # not part of the API it describes

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        own = request.path_info.lstrip("/").rsplit("schema/", 1)[0]
        self.patterns = [path(own, include("xo_recommender.api.urls"))]
        response = super().get(request, *args, **kwargs)
        _publish_body_rules(response.data)
        return response


def _publish_body_rules(schema: dict[str, Any]) -> None:
    """What the generator cannot see: every request body of this API is required, a sync
    body names its row by exactly one of two fields, and the interaction batch holds 1 to
    ``MAX_BATCH`` items (the setting, read now)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    components = schema.get("components", {}).get("schemas", {})
    for name, id_field in (("UserSyncRequest", "user_id"), ("BusinessSyncRequest",
                                                            "business_id")):
        if name in components:  # the row is named by <name>_id or the original's id
            components[name]["oneOf"] = [
                {"required": [id_field], "not": {"required": ["id"]}},
                {"required": ["id"], "not": {"required": [id_field]}}]
    body = components.get("InteractionCreateBodyRequest")
    for branch in (body or {}).get("oneOf", []):
        if branch.get("type") == "array":
            branch.update(minItems=1, maxItems=int(rec_settings.MAX_BATCH))
