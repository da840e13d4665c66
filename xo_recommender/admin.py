"""Admin: interactions (with a chart per day and type), model versions with their
holdout figures and a chart across versions, and a per-user preview linked from the
user's and the interaction's pages. Numbers are rounded for people.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from xo_recommender import charts
from xo_recommender.conf import settings as rec_settings
from xo_recommender.holdout_report import tuning_text
from xo_recommender.models import MAX_WEIGHT, Interaction, ModelVersion

#: Holdout figures shown, in this order, with their labels.
METRICS = [("ndcg@10", "NDCG@10"), ("precision@10", "P@10"), ("recall@10", "R@10"),
           ("coverage", "coverage")]
SEGMENTS = [("history", "users with history"), ("cold", "cold users")]
CHART_DAYS = 30
CHART_VERSIONS = 20


def preview_url(user_id: Any) -> str:
    """The admin's recommendation preview for one user."""
    return f"{reverse('admin:xo_recommender_preview')}?user={user_id}"


def _rounded(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def holdout_rows(metrics: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """``(ranker, segment, [figure, …])`` rows of a version's holdout figures, or []."""
    holdout = (metrics or {}).get("holdout") or {}
    rankers = [("model", holdout.get("model") or {})]
    rankers += sorted((holdout.get("baselines") or {}).items())
    rows = []
    for name, blocks in rankers:
        for segment, label in SEGMENTS:
            figures = (blocks or {}).get(segment)
            if figures:
                rows.append((name, label, [_rounded(figures.get(key)) for key, _ in METRICS]))
    return rows


class RecommendationPreviewMixin:
    """For the host's user admin: a "Recommendations" link on each user's page.

    ``class MyUserAdmin(RecommendationPreviewMixin, UserAdmin): ...``
    """

    change_form_template = "xo_recommender/admin/user_change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "xo_preview_url": preview_url(object_id)}
        return super().change_view(request, object_id, form_url, extra_context)


class InteractionForm(forms.ModelForm):
    """An interaction edited by hand gets the checks a recorded one gets: a configured
    type, a finite weight from 0 to ``MAX_WEIGHT``."""

    weight = forms.FloatField(min_value=0, max_value=MAX_WEIGHT)

    class Meta:
        model = Interaction
        fields = ("user", "business", "interaction_type", "weight")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        types = list(rec_settings.INTERACTION_WEIGHTS)
        current = self.instance.interaction_type if self.instance.pk else None
        if current and current not in types:  # a type since removed from settings stays
            types.append(current)
        self.fields["interaction_type"] = forms.ChoiceField(
            choices=[(t, t) for t in types], label=self.fields["interaction_type"].label)


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("user", "business", "interaction_type", "count", "rounded_weight",
                    "last_seen", "preview_link")
    list_filter = ("interaction_type", "last_seen")
    search_fields = ("=user__pk", "=business__pk")
    raw_id_fields = ("user", "business")
    date_hierarchy = "last_seen"
    list_select_related = ("user", "business")
    readonly_fields = ("first_seen", "last_seen", "count", "preview_link")
    show_full_result_count = False  # no COUNT(*) over millions of rows per page
    change_list_template = "xo_recommender/admin/interaction_change_list.html"
    form = InteractionForm

    def has_add_permission(self, request) -> bool:
        """Interactions are recorded (``record_interaction``, the API), which folds repeats
        into one row and sets the times the form cannot; the admin corrects them."""
        return False

    @admin.display(description="weight", ordering="weight")
    def rounded_weight(self, obj: Interaction) -> str:
        return _rounded(obj.weight, 2)

    @admin.display(description="recommendations")
    def preview_link(self, obj: Interaction) -> str:
        if obj.pk is None:
            return "—"
        return format_html('<a href="{}">preview for user {}</a>',
                           preview_url(obj.user_id), obj.user_id)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "xo_chart": self.activity_chart()})

    def activity_chart(self) -> Any:
        """Interaction rows by the day they were last active, per type, last ``CHART_DAYS`` days.

        ``last_seen`` (indexed) rather than ``first_seen``: one bounded index range scan
        even over millions of rows. A row is one (user, business, type), so a repeat
        moves its row to the day of the repeat.
        """
        today = timezone.localdate()
        days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
        since = timezone.now() - timedelta(days=CHART_DAYS)
        rows = (Interaction.objects.filter(last_seen__gte=since)
                .annotate(day=TruncDate("last_seen"))
                .values("day", "interaction_type").annotate(n=Count("id")).order_by())
        by_type: dict[str, dict[Any, int]] = {}
        for row in rows:
            by_type.setdefault(row["interaction_type"], {})[row["day"]] = row["n"]
        series = {kind: [counts.get(day, 0) for day in days]
                  for kind, counts in sorted(by_type.items())}
        return charts.stacked_bar_chart(
            f"Interactions per day (last activity) and type, last {CHART_DAYS} days",
            [day.strftime("%b %d") for day in days], series)

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
                    "n_interactions", "fit_time", "peak_memory", "artifact_size", "holdout_ndcg",
                    "serving")
    list_filter = ("status", "is_active")
    exclude = ("metrics", "fit_seconds", "peak_rss_mb", "artifact_bytes", "artifact_chunks",
               "artifact_sha256")
    readonly_fields = ("created_at", "finished_at", "status", "is_active", "n_users",
                       "n_businesses", "n_interactions", "fit_time", "peak_memory",
                       "artifact_size", "holdout_figures", "serving", "guardrail", "tuning",
                       "params", "error")
    change_list_template = "xo_recommender/admin/modelversion_change_list.html"

    def has_add_permission(self, request):
        return False  # versions come from rebuild_recommendations

    @admin.display(description="fit time", ordering="fit_seconds")
    def fit_time(self, obj: ModelVersion) -> str:
        return "—" if obj.fit_seconds is None else f"{obj.fit_seconds:,.1f} s"

    @admin.display(description="peak memory", ordering="peak_rss_mb")
    def peak_memory(self, obj: ModelVersion) -> str:
        return "—" if obj.peak_rss_mb is None else f"{obj.peak_rss_mb:,.0f} MiB"

    @admin.display(description="artifact", ordering="artifact_bytes")
    def artifact_size(self, obj: ModelVersion) -> str:
        if not obj.artifact_chunks:
            return "—"
        return f"{obj.artifact_bytes / 2**20:,.1f} MiB in {obj.artifact_chunks} chunks"

    @admin.display(description="NDCG@10 (model)")
    def holdout_ndcg(self, obj: ModelVersion) -> str:
        model = ((obj.metrics or {}).get("holdout") or {}).get("model") or {}
        block = model.get("history") or model.get("cold") or {}
        return _rounded(block.get("ndcg@10"))

    @admin.display(description="serving")
    def serving(self, obj: ModelVersion) -> str:
        return (obj.metrics or {}).get("serving") or "—"

    @admin.display(description="guardrail")
    def guardrail(self, obj: ModelVersion) -> str:
        return (obj.metrics or {}).get("guardrail") or "—"

    @admin.display(description="hyperparameters (holdout NDCG@10)")
    def tuning(self, obj: ModelVersion) -> str:
        return tuning_text(obj.metrics) or "—"

    @admin.display(description="holdout figures")
    def holdout_figures(self, obj: ModelVersion) -> str:
        rows = holdout_rows(obj.metrics)
        if not rows:
            return "No holdout figures for this version."
        holdout = obj.metrics["holdout"]
        head = format_html_join("", "<th>{}</th>", ((label,) for _, label in METRICS))
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td>{}</tr>",
            ((name, segment, format_html_join("", "<td>{}</td>", ((v,) for v in figures)))
             for name, segment, figures in rows))
        return format_html(
            '<p>k = {}, {} holdout users ({} cold)</p><table class="xo-holdout"><thead><tr>'
            "<th>ranker</th><th>users</th>{}</tr></thead><tbody>{}</tbody></table>",
            holdout.get("k", "—"), _rounded(holdout.get("users"), 0),
            _rounded(holdout.get("cold_users"), 0), head, body)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "xo_charts": self.quality_charts()})

    def quality_charts(self) -> list[Any]:
        """NDCG@10 of the model and each baseline across the latest versions, per segment."""
        versions = list(ModelVersion.objects.filter(status=ModelVersion.Status.READY)
                        .order_by("-created_at", "-pk")[:CHART_VERSIONS])[::-1]
        versions = [v for v in versions if (v.metrics or {}).get("holdout")]
        drawn = []
        for segment, label in SEGMENTS:
            series: dict[str, list[float | None]] = {}
            for i, version in enumerate(versions):
                holdout = version.metrics["holdout"]
                rankers = {"model": holdout.get("model") or {},
                           **(holdout.get("baselines") or {})}
                for name, blocks in rankers.items():
                    value = ((blocks or {}).get(segment) or {}).get("ndcg@10")
                    series.setdefault(name, [None] * len(versions))[i] = value
            series = {name: points for name, points in series.items()
                      if any(v is not None for v in points)}
            if series:
                drawn.append(charts.line_chart(
                    f"NDCG@10 on the holdout, {label}, by version (model vs baselines)",
                    [f"v{v.pk}" for v in versions], series))
        return drawn


    def has_delete_permission(self, request, obj=None):  # never the version being served
        return super().has_delete_permission(request, obj) and not (obj and obj.is_active)
