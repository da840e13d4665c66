"""Rebuilding: train a new model version beside the live one and switch to it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.utils import timezone

from xo_recommender import artifacts, snapshot
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine.model import EngineParams, Recommender
from xo_recommender.engine.selfeval import SelfEvaluation, learn_ranking
from xo_recommender.exceptions import RebuildFailed
from xo_recommender.models import ModelArtifactChunk, ModelVersion, RecBusiness

try:
    import resource
except ImportError:  # Windows: no peak memory figure
    resource = None  # type: ignore[assignment]

#: PostgreSQL advisory lock key held by a rebuild for its whole run ("xo_rebuild").
REBUILD_LOCK_KEY = 0x786F5F7265627569


def rebuild(*, progress: Callable[[str], None] | None = None) -> ModelVersion:
    """Train a new model version beside the live one and make it active atomically.

    On failure the new version is marked failed, the previous one keeps serving, and
    ``RebuildFailed`` is raised. Old versions beyond ``KEEP_VERSIONS`` are deleted.
    Rebuilds run one at a time per database; a version left ``building`` by a rebuild
    that died (process killed) is marked failed by the next one.
    """
    with _one_at_a_time():
        _fail_orphans()
        if not RecBusiness.objects.exists():  # nothing to rank: say so, leave no version
            raise RebuildFailed(
                "There are no businesses in the host's business table yet, so there is "
                "nothing to recommend: add businesses, then rebuild.")
        return _rebuild(progress)


@contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Hold a session advisory lock on PostgreSQL: a killed process's connection closes
    and the lock goes with it, so whoever holds it knows no other rebuild is running.
    Elsewhere (SQLite: one machine, usually one process) rebuilds are not serialised."""
    connection = connections[router.db_for_write(ModelVersion)]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [REBUILD_LOCK_KEY])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [REBUILD_LOCK_KEY])
        except DatabaseError:
            pass  # the connection is gone, and the lock with it


def _fail_orphans() -> int:
    """Mark failed the versions still ``building`` whose rebuild is no longer running.

    On PostgreSQL the lock proves it; elsewhere a ``building`` version older than an
    hour is taken for dead.
    """
    orphans = ModelVersion.objects.filter(status=ModelVersion.Status.BUILDING)
    if connections[router.db_for_write(ModelVersion)].vendor != "postgresql":
        orphans = orphans.filter(created_at__lt=timezone.now() - timedelta(hours=1))
    return orphans.update(
        status=ModelVersion.Status.FAILED, finished_at=timezone.now(), is_active=False,
        error="Orphaned: the rebuild that was building it stopped before finishing "
        "(process killed or connection lost).")


def _peak_rss_mb() -> float | None:
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def _rebuild(progress: Callable[[str], None] | None) -> ModelVersion:
    say = progress or (lambda message: None)
    params = artifacts.engine_params()
    version = ModelVersion.objects.create(params=params.to_dict())
    started = time.perf_counter()
    try:
        model, evaluation = _train(params, say)
        version.metrics = evaluation.as_metrics() if evaluation is not None else {
            "holdout": None, "serving": "fixed BLEND_WEIGHTS",
            "guardrail": "BLEND_WEIGHTS is set: the fixed weights serve, nothing is learned",
            "notes": ["BLEND_WEIGHTS is set, so this rebuild learned nothing and measured "
                      "nothing; unset it to learn the ranking from a holdout"]}
        version.params = model.params.to_dict()
        say(f"Saving version {version.pk}")
        artifacts.store_artifact(version, model.to_parts())
        say(f"Saved version {version.pk} ({version.artifact_bytes / 2**20:.1f} MiB in "
            f"{version.artifact_chunks} chunks)")
        version.fit_seconds = time.perf_counter() - started  # read + train + serialise
        version.n_users = model.stats["users"]
        version.n_businesses = model.stats["items"]
        version.n_interactions = model.stats["interactions"]
        version.peak_rss_mb = _peak_rss_mb()
        version.status = ModelVersion.Status.READY
        version.finished_at = timezone.now()
        _activate(version)
    except Exception as exc:
        ModelArtifactChunk.objects.filter(version_id=version.pk).delete()
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}", is_active=False,
        )
        raise RebuildFailed(f"Rebuild of version {version.pk} failed: {exc}") from exc
    _prune(int(rec_settings.KEEP_VERSIONS))
    return version


def _train(params: EngineParams, say: Callable[[str], None]
           ) -> tuple[Recommender, SelfEvaluation | None]:
    """Read the host data, learn how to rank it (unless weights are fixed), fit the model.

    The ranking is learned on a temporal holdout of the site's own data (the engine's
    ``selfeval``); the model that serves is then fitted on all of it with those weights.
    """
    say("Reading businesses")
    catalogue = snapshot.load_catalogue()
    say(f"Reading interactions ({len(catalogue.ids):,} businesses)")
    events = snapshot.load_interactions(tuple(params.type_weights))
    evaluation = None
    if rec_settings.BLEND_WEIGHTS is None:
        users = snapshot.load_users(events.user_ids)
        say(f"Learning the ranking from a holdout of {len(events):,} interactions")
        evaluation = learn_ranking(
            catalogue, events, users, params, progress=say,
            budget_seconds=float(rec_settings.TUNING_SECONDS),
            max_users=int(rec_settings.TUNING_MAX_USERS))
        params = evaluation.apply(params)
    say(f"Training on {len(events):,} interactions")
    return Recommender.fit(catalogue, events, params, now=time.time()), evaluation


def _activate(version: ModelVersion) -> None:
    """Save ``version`` and flip the active pointer to it in one transaction, once its
    artifact is known to be stored whole."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                if artifacts.stored_chunks(version) != version.artifact_chunks:
                    raise artifacts.IncompleteArtifact(
                        f"version {version.pk}: not every artifact chunk is stored")
                ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(
                    is_active=False)
                version.is_active = True
                version.save()
                transaction.on_commit(lambda: artifacts.publish_active(version.pk))
            return
        except IntegrityError:  # another rebuild switched at the same moment: go again
            version.is_active = False
            if attempt == 2:
                raise


def _prune(keep: int) -> None:
    keep_ids = list(ModelVersion.objects.filter(status=ModelVersion.Status.READY)
                    .order_by("-pk").values_list("pk", flat=True)[:max(keep, 1)])
    (ModelVersion.objects.filter(is_active=False)
     .exclude(pk__in=keep_ids).exclude(status=ModelVersion.Status.BUILDING).delete())
