"""App configuration: ``ready()`` only registers checks and connects receivers."""

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save, pre_migrate


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
        # Cache invalidation: exactly the host models configured, and our own table.
        from xo_recommender.models import Interaction

        user_model = Interaction.user.field.related_model
        business_model = Interaction.business.field.related_model
        for signal, name in ((post_save, "save"), (post_delete, "delete")):
            if isinstance(user_model, type):
                signal.connect(signals.user_changed, sender=user_model,
                               dispatch_uid=f"xo_recommender.user_{name}")
            if isinstance(business_model, type):
                signal.connect(signals.business_changed, sender=business_model,
                               dispatch_uid=f"xo_recommender.business_{name}")
            signal.connect(signals.interaction_changed, sender=Interaction,
                           dispatch_uid=f"xo_recommender.interaction_{name}")
