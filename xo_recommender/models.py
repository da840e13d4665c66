"""The recommender's models.

``RecUser`` and ``RecBusiness`` are unmanaged and read SQL views over the host's own
tables (see ``sources.py``): whatever the host calls its columns, the recommender sees
one fixed shape, and it never writes a host table. ``Interaction`` is the app's own
table, with foreign keys to the host models so deleting a host user or business
deletes their interactions.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from xo_recommender.conf import settings as rec_settings
from xo_recommender.sources import BUSINESS_VIEW, USER_VIEW

#: Where the foreign keys point. An unset business model still lets Django import the
#: app: the FK then names a model that does not exist and the system checks report it
#: (``xo_recommender.E001`` says which setting to add) instead of a traceback.
USER_MODEL = rec_settings.user_model
BUSINESS_MODEL = rec_settings.business_model or "xo_recommender.BusinessModelNotConfigured"


class RecUser(models.Model):
    """A host user as the recommender sees it (read-only, over ``USER_VIEW``)."""

    id = models.BigIntegerField(primary_key=True)
    interests = models.JSONField(default=list)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        managed = False
        db_table = USER_VIEW
        verbose_name = _("recommender user")

    def __str__(self) -> str:
        return f"user {self.pk}"


class RecBusiness(models.Model):
    """A host business as the recommender sees it (read-only, over ``BUSINESS_VIEW``)."""

    id = models.BigIntegerField(primary_key=True)
    name = models.TextField()
    categories = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    latitude = models.FloatField(null=True)
    longitude = models.FloatField(null=True)
    popularity = models.FloatField(default=0.0)
    rating = models.FloatField(null=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        managed = False
        db_table = BUSINESS_VIEW
        verbose_name = _("recommender business")
        verbose_name_plural = _("recommender businesses")

    def __str__(self) -> str:
        return self.name


class SourceView(models.Model):
    """Which SQL view is installed, and the signature of the mapping it was built from.

    The ``views`` system check compares the signature with the current settings, so a
    changed field mapping is reported as stale instead of silently reading old columns.
    """

    name = models.CharField(max_length=63, primary_key=True)
    signature = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("source view")

    def __str__(self) -> str:
        return self.name


#: The largest weight an interaction may carry: more is a client bug, not a strength,
#: and far more would overflow the model's float32 arithmetic and spoil every user's
#: ranking. ``record_interaction`` and the API refuse more; the table refuses it too, and
#: with it NaN and infinity, which compare above every number in PostgreSQL.
MAX_WEIGHT = 1e6


class Interaction(models.Model):
    """One row per (user, business, type); repeats bump ``count`` and ``last_seen``.

    ``weight`` is the caller's own strength for the latest event (1.0 by default); the
    per-type weights from settings multiply it at training time. Record rows through
    ``xo_recommender.services.record_interaction``, which upserts safely under
    concurrency, rather than with ``create()``.
    """

    user = models.ForeignKey(
        USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    business = models.ForeignKey(BUSINESS_MODEL, on_delete=models.CASCADE, related_name="+")
    interaction_type = models.CharField(_("type"), max_length=32)
    weight = models.FloatField(default=1.0)
    count = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "business", "interaction_type"],
                name="xo_rec_interaction_unique_key",
            ),
            models.CheckConstraint(
                condition=models.Q(weight__gte=0, weight__lte=MAX_WEIGHT),
                name="xo_rec_interaction_weight_range",
            ),
            models.CheckConstraint(
                condition=models.Q(count__gte=1), name="xo_rec_interaction_count_gte_1"
            ),
        ]
        indexes = [
            # A user's history, newest first: fold-in scoring and the API's list.
            models.Index(fields=["user", "-last_seen"], name="xo_rec_inter_user_recent"),
            # Training and incremental refreshes read by time.
            models.Index(fields=["last_seen"], name="xo_rec_inter_last_seen"),
        ]
        verbose_name = _("interaction")
        permissions = [
            ("sync", _("Can act for any user: sync, clear caches, read and record for others")),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.interaction_type} {self.business_id} ×{self.count}"


class ModelVersion(models.Model):
    """One trained model: its artifact, how it was built, and whether it is the live one.

    A rebuild writes a new row beside the live one and flips ``is_active`` in one
    transaction (at most one row may be active), so readers see the old model or the new
    one, never a mix, and a failed rebuild leaves the previous version serving.
    """

    class Status(models.TextChoices):
        BUILDING = "building", _("building")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")

    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.BUILDING)
    is_active = models.BooleanField(default=False)
    n_users = models.PositiveIntegerField(default=0)
    n_businesses = models.PositiveIntegerField(default=0)
    n_interactions = models.PositiveBigIntegerField(default=0)
    fit_seconds = models.FloatField(null=True, blank=True)
    peak_rss_mb = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    #: The artifact is stored as ``ModelArtifactChunk`` rows; these say what a complete
    #: one is, so a reader never takes a partial or altered artifact for the model.
    artifact_bytes = models.PositiveBigIntegerField(default=0, editable=False)
    artifact_chunks = models.PositiveIntegerField(default=0, editable=False)
    artifact_sha256 = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True),
                name="xo_rec_one_active_version",
            ),
        ]
        verbose_name = _("model version")

    def __str__(self) -> str:
        return f"v{self.pk} ({self.status}{', active' if self.is_active else ''})"


class ModelArtifactChunk(models.Model):
    """One piece of a version's artifact, in order of ``index``.

    A model artifact grows with businesses × neighbours (327 MiB at 200k businesses) and
    PostgreSQL refuses one value near 1 GB, so it is stored as pieces of at most
    ``ARTIFACT_CHUNK_BYTES``, written and read one at a time.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="chunks",
                                db_index=False)  # the unique constraint's index leads with it
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "index"],
                                    name="xo_rec_artifact_chunk_order"),
        ]
        verbose_name = _("model artifact chunk")

    def __str__(self) -> str:
        return f"v{self.version_id} chunk {self.index}"


class IngestedBatch(models.Model):
    """A batch of deferred interactions that was written, by the token of its claim.

    The flusher writes this row in the same transaction as the batch's upsert, so a
    batch whose writer died before it could say so in Redis is adopted by the next
    flusher and found here instead of being counted twice (``services.ingestion``).
    Rows older than ``ingestion.KEEP_TOKENS_SECONDS`` are pruned by the flusher.
    """

    token = models.CharField(max_length=32, primary_key=True)
    written_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ingested batch")

    def __str__(self) -> str:
        return self.token
