"""Services: the only place that joins the ORM, the engine and the cache.

Views, API endpoints, signal receivers and tasks call these functions; they own
validation and transactions. One module per concern; every public name is re-exported
here, so ``from xo_recommender.services import recommend_for`` is the stable import.
"""

from xo_recommender.services.health import health, public_report
from xo_recommender.services.interactions import (
    InteractionEvent,
    record_interaction,
    record_interactions,
    user_interactions,
)
from xo_recommender.services.ranking import (
    PageItem,
    PageRendering,
    Recommendation,
    RecommendationPage,
    popular_businesses,
    recommend_for,
    recommendation_page,
    recommendation_payload,
    similar_businesses,
    user_history,
)
from xo_recommender.services.rebuild import rebuild
from xo_recommender.services.sync import clear_user_cache, sync_business, sync_user

__all__ = [
    "InteractionEvent",
    "PageItem",
    "Recommendation",
    "PageRendering",
    "RecommendationPage",
    "clear_user_cache",
    "health",
    "popular_businesses",
    "public_report",
    "rebuild",
    "recommend_for",
    "recommendation_page",
    "recommendation_payload",
    "record_interaction",
    "record_interactions",
    "similar_businesses",
    "sync_business",
    "sync_user",
    "user_history",
    "user_interactions",
]
