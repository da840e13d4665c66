"""Request and response shapes: the original FastAPI service's JSON, validated here.

Query and body serializers turn raw input into the arguments of one service function
and reject anything else with a 400 naming the field; response serializers exist so the
OpenAPI schema describes what the services return (the views return the services'
dicts as they are).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from xo_recommender.conf import settings as rec_settings
from xo_recommender.models import MAX_WEIGHT
from xo_recommender.services import InteractionEvent, PageRendering
from xo_recommender.services.interactions import MAX_COUNT

#: Largest id a bigint primary key can hold; larger ids cannot exist.
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 10


class IdField(serializers.IntegerField):
    """A positive integer id that fits a bigint primary key."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class StrictFloatField(serializers.FloatField):
    """A finite number that refuses booleans (``true`` is not a weight)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


# ------------------------------------------------------------------------------- queries


class PlaceQuerySerializer(serializers.Serializer):
    """``lat``/``lng`` (together) and ``radius_km``: rank or filter around a point."""

    lat = StrictFloatField(required=False, min_value=-90, max_value=90,
                           help_text="Latitude of the point to rank around (with lng).")
    lng = StrictFloatField(required=False, min_value=-180, max_value=180,
                           help_text="Longitude of the point to rank around (with lat).")
    radius_km = StrictFloatField(required=False, min_value=0,
                                 help_text="Keep only businesses within this distance.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_lat, has_lng = "lat" in attrs, "lng" in attrs
        if has_lat != has_lng:
            missing = "lng" if has_lat else "lat"
            raise serializers.ValidationError({missing: ["Give lat and lng together."]})
        attrs["near"] = (attrs.pop("lat"), attrs.pop("lng")) if has_lat else None
        attrs.setdefault("radius_km", None)
        return attrs


def _check_limit(name: str, value: int) -> int:
    maximum = int(rec_settings.MAX_RESULTS)
    if value > maximum:
        raise serializers.ValidationError({name: [f"Ensure this value is at most {maximum}."]})
    return value


def _publish_maximum(serializer: serializers.Serializer, *names: str) -> None:
    """Give the page-size fields ``MAX_RESULTS`` as their maximum (read at request time,
    so the schema publishes the configured value); the check itself stays ours."""
    maximum = int(rec_settings.MAX_RESULTS)
    for name in names:
        serializer.fields[name].max_value = maximum


class LimitQuerySerializer(serializers.Serializer):
    """``limit``: how many results, 1 to ``MAX_RESULTS``."""

    limit = serializers.IntegerField(required=False, min_value=1, default=DEFAULT_LIMIT,
                                     help_text="How many results (at most MAX_RESULTS).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _publish_maximum(self, "limit")

    def validate_limit(self, value: int) -> int:
        maximum = int(rec_settings.MAX_RESULTS)
        if value > maximum:
            raise serializers.ValidationError(f"Ensure this value is at most {maximum}.")
        return value


class CategoryField(serializers.CharField):
    """A category name; an empty value means "any category"."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault("help_text", "Keep only businesses in this category.")
        # DRF refuses NUL characters in any text; the pattern puts that in the schema
        kwargs.setdefault("validators", [RegexValidator(r"^[^\x00]*$")])
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str | None:
        return super().to_internal_value(data) or None


class RecommendQuerySerializer(PlaceQuerySerializer):
    """Query of ``GET {user_id}/``: the original's ``max_results`` or DRF-style ``limit``."""

    max_results = serializers.IntegerField(
        required=False, min_value=1,
        help_text="How many results (the original service's name; same as limit).")
    limit = serializers.IntegerField(required=False, min_value=1,
                                     help_text="How many results (default 10).")
    offset = serializers.IntegerField(required=False, min_value=0, default=0,
                                      help_text="Skip this many results (paging).")
    category = CategoryField()
    diversify = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="Re-rank for category variety (default: the DIVERSIFY setting).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _publish_maximum(self, "limit", "max_results")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        max_results, limit = attrs.pop("max_results", None), attrs.pop("limit", None)
        if max_results is not None and limit is not None and max_results != limit:
            raise serializers.ValidationError(
                {"limit": ["Give max_results or limit, not both with different values."]})
        name = "max_results" if max_results is not None else "limit"
        attrs["limit"] = _check_limit(name, max_results or limit or DEFAULT_LIMIT)
        furthest = 10 * int(rec_settings.MAX_RESULTS) - attrs["limit"]
        if attrs["offset"] > furthest:
            raise serializers.ValidationError(
                {"offset": [f"Ensure this value is at most {furthest} for this page size."]})
        attrs.setdefault("category", None)
        return attrs


class PopularQuerySerializer(LimitQuerySerializer, PlaceQuerySerializer):
    """Query of ``GET popular/``."""

    category = CategoryField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        attrs.setdefault("category", None)
        return attrs


class SimilarQuerySerializer(LimitQuerySerializer):
    """Query of ``GET businesses/{id}/similar/``."""


# --------------------------------------------------------------------------------- bodies


class InteractionCreateSerializer(serializers.Serializer):
    """The original ``InteractionCreate``: who did what to which business, how strongly."""

    user_id = IdField(required=False,
                      help_text="The host user's id; left out, the signed-in user's.")
    business_id = IdField()
    interaction_type = serializers.CharField(
        max_length=32, help_text="One of the INTERACTION_WEIGHTS types, e.g. view, like, save.")
    weight = StrictFloatField(required=False, default=1.0, min_value=0, max_value=MAX_WEIGHT)
    count = serializers.IntegerField(
        required=False, default=1, min_value=1, max_value=MAX_COUNT,
        help_text="How many times it happened (as record_interaction's count): a repeat "
        "adds to the row's count.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the configured types, read now (not at import): the schema publishes them
        types = list(rec_settings.INTERACTION_WEIGHTS)
        self.fields["interaction_type"] = serializers.ChoiceField(
            choices=types, help_text="One of the INTERACTION_WEIGHTS types.",
            error_messages={"invalid_choice": "Unknown interaction type \"{input}\"; "
                            f"expected one of: {', '.join(types)}."})

    @staticmethod
    def to_event(data: dict[str, Any]) -> InteractionEvent:
        return InteractionEvent(data["user_id"], data["business_id"], data["interaction_type"],
                                data["weight"], data["count"])


class _SyncSerializer(serializers.Serializer):
    """A sync body names its row as ``<name>_id`` or, as the original client sends it,
    ``id``. In the shared-database option nothing is copied (the host's row is the
    truth), so every other field is accepted and ignored."""

    id_field = ""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [attrs[name] for name in (self.id_field, "id") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                {self.id_field: [f"Give {self.id_field} or id (exactly one)."]})
        return {self.id_field: given[0]}


def _ignored(help_text: str) -> serializers.JSONField:
    return serializers.JSONField(required=False, allow_null=True, help_text=help_text)


class UserSyncSerializer(_SyncSerializer):
    """The original ``UserSync``: ``{"id", "username", "email", "interests", "location"}``."""

    id_field = "user_id"
    user_id = IdField(required=False, help_text="The host user's id.")
    id = IdField(required=False, help_text="The host user's id (the original's name).")
    username = _ignored("Accepted and ignored: read from the host's table.")
    email = _ignored("Accepted and ignored: read from the host's table.")
    interests = _ignored("Accepted and ignored: read from the host's table.")
    location = _ignored("Accepted and ignored: read from the host's table.")


class BusinessSyncSerializer(_SyncSerializer):
    """The original ``BusinessSync``: ``{"id", "name", …}``; only the id matters."""

    id_field = "business_id"
    business_id = IdField(required=False, help_text="The host business's id.")
    id = IdField(required=False, help_text="The host business's id (the original's name).")
    name = _ignored("Accepted and ignored: read from the host's table.")


# ------------------------------------------------------------------------------ responses


class RecommendationSerializer(serializers.Serializer):
    business_id = serializers.IntegerField()
    name = serializers.CharField()
    score = serializers.FloatField()
    reasons = serializers.ListField(child=serializers.CharField())
    categories = serializers.ListField(child=serializers.CharField())
    distance_km = serializers.FloatField(allow_null=True)


class RecommendationsResponseSerializer(serializers.Serializer):
    """The original ``GET /recommend/{id}`` answer, rendered from a
    ``services.RecommendationPage``."""

    user_id = serializers.IntegerField()
    recommendations = RecommendationSerializer(many=True, source="items")
    model_version = serializers.IntegerField()
    cached = serializers.BooleanField()


def recommendations_data(page: Any) -> dict[str, Any]:
    """``RecommendationsResponseSerializer(page).data``, built directly.

    The same values and key order (a test compares the two on hits and misses), without
    DRF's per-field copies and lookups, which cost a cache hit more than its cache and
    database round trips together. As in DRF, a None field stays None.
    """
    items = []
    for item in page.items:
        reasons, categories = item.reasons, item.categories
        score, distance = item.score, item.distance_km
        items.append({
            "business_id": _maybe(int, item.business_id), "name": _maybe(str, item.name),
            "score": None if score is None else float(score),
            "reasons": None if reasons is None else [str(r) for r in reasons],
            "categories": None if categories is None else [str(c) for c in categories],
            "distance_km": None if distance is None else float(distance)})
    return {"user_id": _maybe(int, page.user_id), "recommendations": items,
            "model_version": _maybe(int, page.model_version),
            "cached": _maybe(bool, page.cached)}


def recommendations_json(page: Any) -> bytes:
    """The page as DRF's ``JSONRenderer`` sends ``recommendations_data(page)``."""
    return JSONRenderer().render(recommendations_data(page))


#: The API's rendering of a page: a cache hit sends the bytes made when its ranking was
#: computed. The tag holds what shapes the bytes (``JSONRenderer``'s settings, frozen at
#: import like DRF's own, and this format's version), so a change to either is not
#: answered with bytes of the old kind.
JSON_RENDERING = PageRendering(
    ("recommendations", 1, JSONRenderer.compact, JSONRenderer.ensure_ascii,
     JSONRenderer.strict, f"{JSONRenderer.encoder_class.__module__}."
     f"{JSONRenderer.encoder_class.__qualname__}"),
    recommendations_json)


def _maybe(convert: Any, value: Any) -> Any:
    """A field's representation as DRF gives it: None stays None."""
    return None if value is None else convert(value)


class SimilarResponseSerializer(serializers.Serializer):
    business_id = serializers.IntegerField()
    model_version = serializers.IntegerField()
    results = RecommendationSerializer(many=True)


@extend_schema_serializer(many=False)  # answered by a "list" route, yet one object
class PopularResponseSerializer(serializers.Serializer):
    model_version = serializers.IntegerField()
    results = RecommendationSerializer(many=True)


class HealthPartSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["up", "down", "degraded"])
    latency_ms = serializers.FloatField(required=False, help_text="Staff only.")
    detail = serializers.CharField(required=False, help_text="Staff only.")


class BrokerHealthSerializer(HealthPartSerializer):
    status = serializers.ChoiceField(
        choices=["up", "down", "inline"],
        help_text='"inline": no broker is configured, tasks run where they are sent.')


@extend_schema_serializer(many=False)
class HealthResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    database = HealthPartSerializer()
    cache = HealthPartSerializer()
    broker = BrokerHealthSerializer()
    model_version = serializers.IntegerField(allow_null=True)
    serving = serializers.CharField(
        allow_null=True, help_text='Which ranking the live version serves: "model" (the '
        'learned one), the baseline the guardrail kept instead (e.g. "popular_nearby"), '
        '"fixed BLEND_WEIGHTS" or "defaults".')


class UserSyncedSerializer(serializers.Serializer):
    status = serializers.CharField(default="synced")
    user_id = serializers.IntegerField()


class BusinessSyncedSerializer(serializers.Serializer):
    status = serializers.CharField(default="synced")
    business_id = serializers.IntegerField()


class CacheClearedSerializer(serializers.Serializer):
    status = serializers.CharField(default="cleared")
    user_id = serializers.IntegerField()


class RecordedSerializer(serializers.Serializer):
    status = serializers.CharField(default="recorded")


class StoredFloatField(serializers.FloatField):
    """A stored number as JSON: ``null`` where the row holds NaN or an infinity (written
    around the app's checks, e.g. by raw SQL; JSON has no such numbers, and the model
    counts them as 0 or the largest weight)."""

    def to_representation(self, value: Any) -> float | None:
        number = super().to_representation(value)
        return number if math.isfinite(number) else None


class InteractionSerializer(serializers.Serializer):
    """One stored interaction row, as ``GET user/{id}/interactions/`` lists it."""

    business_id = serializers.IntegerField()
    interaction_type = serializers.CharField()
    weight = StoredFloatField(allow_null=True)
    count = serializers.IntegerField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    """``{"detail": ...}``, plus a machine-readable ``code`` where one helps."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)
