"""Rebuilding: train a new model version beside the live one and switch to it."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import replace

from django.db import IntegrityError, transaction
from django.utils import timezone

from xo_recommender import artifacts, snapshot
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine.model import EngineParams, Recommender
from xo_recommender.engine.selfeval import SelfEvaluation, learn_ranking
from xo_recommender.exceptions import RebuildFailed
from xo_recommender.models import ModelVersion


def rebuild(*, progress: Callable[[str], None] | None = None) -> ModelVersion:
    """Train a new model version beside the live one and make it active atomically.

    On failure the new version is marked failed, the previous one keeps serving, and
    ``RebuildFailed`` is raised. Old versions beyond ``KEEP_VERSIONS`` are deleted.
    """
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
        payload = model.to_bytes()
        say(f"Saving version {version.pk} ({len(payload) / 2**20:.1f} MiB)")
        version.artifact = payload
        version.fit_seconds = time.perf_counter() - started  # read + train + serialise
        version.n_users = model.stats["users"]
        version.n_businesses = model.stats["items"]
        version.n_interactions = model.stats["interactions"]
        version.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        version.status = ModelVersion.Status.READY
        version.finished_at = timezone.now()
        _activate(version)
    except Exception as exc:
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
        params = replace(params, ranking=evaluation.ranking)
    say(f"Training on {len(events):,} interactions")
    return Recommender.fit(catalogue, events, params, now=time.time()), evaluation


def _activate(version: ModelVersion) -> None:
    """Save ``version`` and flip the active pointer to it in one transaction."""
    for attempt in range(3):
        try:
            with transaction.atomic():
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
