"""App configuration: ``ready()`` only registers checks and connects receivers."""

from django.apps import AppConfig
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_init,
    post_migrate,
    post_save,
    pre_migrate,
    pre_save,
)


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
        post_init.connect(signals.interaction_loaded, sender=Interaction,
                          dispatch_uid="xo_recommender.interaction_loaded")
        if isinstance(business_model, type):
            pre_save.connect(signals.business_about_to_change, sender=business_model,
                             dispatch_uid="xo_recommender.business_pre_save")
            self._connect_term_relations(business_model)

    def _connect_term_relations(self, business_model: type) -> None:
        """Categories or tags read through a relation (``categories__name``): a change of
        the relation, or of a label, changes what the cached lists show."""
        from xo_recommender import signals
        from xo_recommender.conf import settings as rec_settings

        for key in ("categories", "tags"):
            field = signals.mapped_relation(business_model,
                                            (rec_settings.BUSINESS_FIELDS or {}).get(key))
            if field is None:
                continue
            if field.many_to_many:
                m2m_changed.connect(signals.business_categories_changed,
                                    sender=field.remote_field.through,
                                    dispatch_uid=f"xo_recommender.{key}_m2m")
            for signal, name in ((post_save, "save"), (post_delete, "delete")):
                signal.connect(signals.category_label_changed, sender=field.related_model,
                               dispatch_uid=f"xo_recommender.{key}_label_{name}")
