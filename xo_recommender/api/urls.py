"""Routes of the API; the host mounts them, e.g. under ``api/recommend/``.

The paths are the original service's (``{user_id}/``, ``health/``, ``sync/user/``,
``interaction/``, ``cache/clear/{user_id}/``, ``user/{user_id}/interactions/``) plus
``me/``, ``businesses/{id}/similar/``, ``popular/`` and the OpenAPI ``schema/``.
"""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from xo_recommender.api import errors, views

app_name = "xo_recommender"

router = SimpleRouter()
router.register("health", views.HealthViewSet, basename="health")
router.register("sync", views.SyncViewSet, basename="sync")
router.register("interaction", views.InteractionViewSet, basename="interaction")
router.register("cache", views.CacheViewSet, basename="cache")
router.register("user", views.UserViewSet, basename="user")
router.register("businesses", views.BusinessViewSet, basename="business")
router.register("popular", views.PopularViewSet, basename="popular")
router.register("", views.RecommendationViewSet, basename="recommendation")

urlpatterns = [
    path("schema/", views.RecommenderSchemaView.as_view(), name="schema"),
    *router.urls,
    # Last: any other path under the prefix is the API's own JSON 404, not Django's page.
    re_path(r"^.*$", errors.not_found, name="not-found"),
]
