"""App configuration: ``ready()`` only registers checks and connects receivers."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class XoRecommenderConfig(AppConfig):
    name = "xo_recommender"
    verbose_name = "XO recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from xo_recommender import checks, signals  # noqa: F401  (checks register on import)

        pre_migrate.connect(
            signals.drop_views_before_migrate,
            sender=self,
            dispatch_uid="xo_recommender.drop_views_before_migrate",
        )
        post_migrate.connect(
            signals.refresh_views_after_migrate,
            sender=self,
            dispatch_uid="xo_recommender.refresh_views_after_migrate",
        )
