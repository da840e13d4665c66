"""Admin: interactions, model versions with their figures, and a per-user preview."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from xo_recommender.models import Interaction, ModelVersion


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("user", "business", "interaction_type", "count", "weight", "last_seen")
    list_filter = ("interaction_type", "last_seen")
    search_fields = ("=user__pk", "=business__pk")
    raw_id_fields = ("user", "business")
    date_hierarchy = "last_seen"
    list_select_related = ("user", "business")
    readonly_fields = ("first_seen", "last_seen", "count")
    show_full_result_count = False  # no COUNT(*) over millions of rows per page

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="xo_recommender_preview"), *super().get_urls()]

    def preview_view(self, request):
        """What ``recommend_for`` would answer for one user right now (uncached)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        from xo_recommender.exceptions import RecommenderError
        from xo_recommender.services import recommend_for

        user_id = request.GET.get("user", "").strip()
        results, error = [], None
        if user_id:
            try:
                results = recommend_for(int(user_id), 20)
            except (ValueError, RecommenderError) as exc:
                error = str(exc) or "Not a user id."
        context = {
            **self.admin_site.each_context(request),
            "title": "Recommendation preview",
            "opts": self.model._meta,
            "user_id": user_id,
            "results": results,
            "error": error,
        }
        return TemplateResponse(request, "xo_recommender/admin/preview.html", context)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("pk", "status", "is_active", "created_at", "n_users", "n_businesses",
                    "n_interactions", "fit_seconds", "peak_rss_mb")
    list_filter = ("status", "is_active")
    exclude = ("artifact",)
    readonly_fields = ("created_at", "finished_at", "status", "is_active", "n_users",
                       "n_businesses", "n_interactions", "fit_seconds", "peak_rss_mb",
                       "params", "metrics", "error")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("artifact")  # megabytes per row

    def has_add_permission(self, request):
        return False  # versions come from rebuild_recommendations

    def has_delete_permission(self, request, obj=None):  # never the version being served
        return super().has_delete_permission(request, obj) and not (obj and obj.is_active)
