"""Admin: operators browse interactions (read-mostly; rows are written by the service)."""

from django.contrib import admin

from xo_recommender.models import Interaction


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("user", "business", "interaction_type", "count", "weight", "last_seen")
    list_filter = ("interaction_type", "last_seen")
    search_fields = ("=user__pk", "=business__pk")
    raw_id_fields = ("user", "business")
    date_hierarchy = "last_seen"
    list_select_related = ("user", "business")
    readonly_fields = ("first_seen", "last_seen", "count")
