"""The API benchmark's floor: the least a DRF endpoint can do for the same client.

Same server, same authentication and permission classes as the recommender's API; it
returns a fixed 10-item list from the cache. ``benchmarks/api_load.py`` compares the
recommender's cache-hit answers with this.
"""

from django.core.cache import cache
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

FLOOR_KEY = "xo_bench:floor"
FLOOR_PAYLOAD = {
    "user_id": 0,
    "recommendations": [
        {"business_id": i, "name": f"Business {i}", "score": 1.0 - i / 10,
         "reasons": ["Popular on XO Black"], "categories": ["Coffee"], "distance_km": None}
        for i in range(10)
    ],
    "model_version": 0,
    "cached": True,
}


class FloorView(APIView):
    """GET: the fixed list, read from the cache (written on first use)."""

    @extend_schema(exclude=True)  # a benchmark device, not part of the API
    def get(self, request):
        payload = cache.get(FLOOR_KEY)
        if payload is None:
            cache.set(FLOOR_KEY, FLOOR_PAYLOAD, timeout=None)
            payload = FLOOR_PAYLOAD
        return Response(payload)
