"""Model versions in the database, and the one this process serves.

Every request asks the database which version is active (one indexed single-row
query) and loads that artifact only when it differs from the one already in memory:
after a rebuild every process serves the new version on its next request, with no
restart and no cross-process signalling.

The database stays the source of truth; each machine keeps a local file per version
(``ARTIFACT_DIR``), downloaded once by whichever process needs it first (the others
wait on a file lock), and every process memory-maps that file. The model's arrays are
views into the mapping (``engine.artifact_format``), so N web workers share one copy
of the pages instead of holding N. Without a usable directory the artifact is read
from the database into this process, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from django.core.signals import setting_changed
from django.db import connections, router

from xo_recommender import cache
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine.model import DEFAULT_BLEND, EngineParams, Recommender
from xo_recommender.exceptions import ModelNotReady
from xo_recommender.models import ModelVersion

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: downloads are not serialised
    fcntl = None

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: tuple[int, Recommender] | None = None
_SUFFIX = ".xoa"


def engine_params() -> EngineParams:
    """Training and ranking parameters from the current settings."""
    fixed = rec_settings.BLEND_WEIGHTS
    return EngineParams(
        type_weights=dict(rec_settings.INTERACTION_WEIGHTS),
        half_life_days=rec_settings.HALF_LIFE_DAYS,
        blend_weights=dict(fixed if fixed is not None else DEFAULT_BLEND),
        exclude_types=tuple(rec_settings.EXCLUDE_INTERACTED_TYPES),
        geo_scale_km=float(rec_settings.GEO_SCALE_KM),
        near_km=float(rec_settings.GEO_SCALE_KM),
        diversity_lambda=float(rec_settings.DIVERSITY_LAMBDA),
        collaborative=dict(rec_settings.COLLABORATIVE),
    )


def serving_params(trained: EngineParams) -> EngineParams:
    """The trained model's parameters with the ranking ones taken from current settings.

    Blend weights, exclusions and distances apply at request time, so changing them
    needs no rebuild; what shaped training (type weights, decay) stays as trained.
    """
    now = engine_params()
    # Fixed BLEND_WEIGHTS set after the rebuild win over the learned ranking at once.
    ranking = None if rec_settings.BLEND_WEIGHTS is not None else trained.ranking
    return replace(trained, blend_weights=now.blend_weights, exclude_types=now.exclude_types,
                   ranking=ranking,
                   geo_scale_km=now.geo_scale_km, near_km=now.near_km,
                   diversity_lambda=now.diversity_lambda)


def active_version_id(using: str | None = None) -> int | None:
    qs = ModelVersion.objects.using(using) if using else ModelVersion.objects
    return qs.filter(is_active=True).values_list("pk", flat=True).first()


def publish_active(version_id: int) -> None:
    """Tell every process sharing the cache which version is now active."""
    cache.publish_model_version(version_id)


def loaded_version() -> int | None:
    """The version this process holds in memory (None before the first load)."""
    loaded = _loaded
    return None if loaded is None else loaded[0]


def active_model(known: int | None = None) -> tuple[int, Recommender]:
    """``(version id, model)`` of the active version; loads it on first use or change.

    ``known``: the active version as the caller already knows it (the cache stamps its
    answers with it); when that version is the one in memory, no query is sent.
    """
    global _loaded
    loaded = _loaded
    if known is not None and loaded is not None and loaded[0] == known:
        return loaded
    while True:  # a loop, not recursion: ``_lock`` is not re-entrant
        version_id = active_version_id()
        if version_id is None:
            raise ModelNotReady(
                "No recommendation model has been built yet. "
                "Run `python manage.py rebuild_recommendations`."
            )
        loaded = _loaded
        if loaded is not None and loaded[0] == version_id:
            return loaded
        with _lock:
            if _loaded is not None and _loaded[0] == version_id:
                return _loaded
            model = load_version(version_id)
            if model is None:  # pruned between the two queries: ask again
                continue
            model.params = serving_params(model.params)
            _loaded = (version_id, model)
            return _loaded


def load_version(version_id: int) -> Recommender | None:
    """The stored model ``version_id`` (memory-mapped when a local file can be used);
    ``None`` when that version no longer exists."""
    created = (ModelVersion.objects.filter(pk=version_id)
               .values_list("created_at", flat=True).first())
    if created is None:
        return None
    path = _local_path(version_id, created)
    if path is not None:
        try:
            mapped = _mapped(path) or _download(version_id, path)
        except OSError as exc:
            logger.warning("model file cache %s unusable (%s); loading into memory", path, exc)
        else:
            return None if mapped is None else Recommender.from_bytes(mapped)
    payload = _fetch(version_id)
    return None if payload is None else Recommender.from_bytes(payload)


def _fetch(version_id: int) -> bytes | None:
    """The stored artifact. On PostgreSQL with psycopg 3 it comes in binary form: a
    third of the time of the ORM's hex text, and no text copy twice its size."""
    using = router.db_for_read(ModelVersion)
    connection = connections[using]
    if connection.vendor == "postgresql":
        try:
            import psycopg
        except ImportError:  # psycopg2: the ORM below
            psycopg = None
        if psycopg is not None:
            connection.ensure_connection()
            if isinstance(connection.connection, psycopg.Connection):
                q = connection.ops.quote_name
                meta = ModelVersion._meta
                sql = (f"SELECT {q(meta.get_field('artifact').column)} FROM {q(meta.db_table)} "
                       f"WHERE {q(meta.pk.column)} = %s")
                with psycopg.Cursor(connection.connection) as cursor:
                    cursor.execute(sql, [version_id], binary=True)
                    row = cursor.fetchone()
                return None if row is None else bytes(row[0])
    payload = (ModelVersion.objects.using(using).filter(pk=version_id)
               .values_list("artifact", flat=True).first())
    return None if payload is None else bytes(payload)


def artifact_dir() -> Path | None:
    """Where this machine keeps its artifact files (``None``: keep none)."""
    configured = rec_settings.ARTIFACT_DIR
    if configured is False:
        return None
    return Path(configured or Path(tempfile.gettempdir()) / "xo_recommender-artifacts")


def _local_path(version_id: int, created) -> Path | None:
    """The file name carries the database's identity and the version's creation time:
    ids alone repeat across databases and after a test database is rebuilt."""
    directory = artifact_dir()
    if directory is None:
        return None
    conn = connections[router.db_for_read(ModelVersion)].settings_dict
    where = f"{conn.get('ENGINE')}|{conn.get('HOST')}|{conn.get('PORT')}|{conn.get('NAME')}"
    db = hashlib.sha1(where.encode()).hexdigest()[:12]
    return directory / f"{db}-{version_id}-{created.timestamp():.6f}{_SUFFIX}"


def _mapped(path: Path) -> mmap.mmap | None:
    try:
        with open(path, "rb") as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (FileNotFoundError, ValueError):  # ValueError: an empty file
        return None


def _download(version_id: int, path: Path) -> mmap.mmap | None:
    """Write version ``version_id`` to ``path`` once per machine, then map it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+b") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be downloading it
        mapped = _mapped(path)
        if mapped is not None:
            return mapped
        payload = _fetch(version_id)
        if payload is None:
            return None
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(payload)
            os.replace(tmp, path)  # readers see the whole file or none
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        del payload
    _prune(path)
    return _mapped(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by another process
        return 0.0


def _prune(current: Path) -> None:
    """Keep this database's newest ``KEEP_VERSIONS`` files; a process still mapping a
    removed file keeps its pages until it lets go."""
    prefix = current.name.split("-", 1)[0] + "-"
    files = sorted(current.parent.glob(f"{prefix}*{_SUFFIX}"), key=_mtime, reverse=True)
    for old in files[max(int(rec_settings.KEEP_VERSIONS), 1):]:
        if old != current:
            with contextlib.suppress(OSError):
                old.unlink()
                old.with_suffix(".lock").unlink()


def forget_loaded() -> None:
    """Drop the in-memory model (tests, and after settings change)."""
    global _loaded
    with _lock:
        _loaded = None


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("XO_RECOMMENDER"):
        forget_loaded()  # ranking parameters come from settings at load time


setting_changed.connect(_on_setting_changed, dispatch_uid="xo_recommender.artifacts.forget")
