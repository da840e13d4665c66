"""Model versions in the database, and the one this process serves.

Every request asks the database which version is active (one indexed single-row
query) and loads that artifact only when it differs from the one already in memory:
after a rebuild every process serves the new version on its next request, with no
restart and no cross-process signalling.

The database stays the source of truth, holding each artifact as ordered chunks (one
value near 1 GB is more than PostgreSQL accepts), written and read one at a time, with
the size and SHA-256 that make a partial one unservable. Each machine keeps a local
file per version (``ARTIFACT_DIR``), downloaded once by whichever process needs it
first (the others wait on a file lock), and every process memory-maps that file. The
model's arrays are views into the mapping (``engine.artifact_format``), so N web
workers share one copy of the pages instead of holding N. Without a usable directory
the artifact is read from the database into one buffer of this process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from django.core.signals import setting_changed
from django.db import connections, router, transaction

from xo_recommender import cache
from xo_recommender.conf import settings as rec_settings
from xo_recommender.engine import artifact_format
from xo_recommender.engine.model import DEFAULT_BLEND, EngineParams, Recommender
from xo_recommender.exceptions import ModelNotReady
from xo_recommender.models import ModelArtifactChunk, ModelVersion

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
    row = (ModelVersion.objects.filter(pk=version_id)
           .values_list("created_at", "artifact_bytes", "artifact_chunks", "artifact_sha256")
           .first())
    if row is None:
        return None
    stored = StoredArtifact(version_id, *row[1:])
    path = _local_path(version_id, row[0])
    if path is not None:
        try:
            mapped = _mapped(path) or _download(stored, path)
        except OSError as exc:
            logger.warning("model file cache %s unusable (%s); loading into memory", path, exc)
        else:
            return None if mapped is None else Recommender.from_bytes(mapped)
    payload = _read_into_memory(stored)
    return None if payload is None else Recommender.from_bytes(payload)


@dataclass(frozen=True)
class StoredArtifact:
    """What a complete artifact of one version is: its size, pieces and digest."""

    version_id: int
    size: int
    chunks: int
    sha256: str


class IncompleteArtifact(ModelNotReady):
    """A version's stored chunks do not add up to the artifact its row describes: it is
    never served (the API answers 503) and never activated."""


def store_artifact(version: ModelVersion, parts: Iterable[bytes | memoryview]) -> None:
    """Write the artifact ``parts`` (in order) as chunks of ``version``, in one transaction.

    Chunks are ``ARTIFACT_CHUNK_BYTES`` at most and written as they fill, so this holds one
    chunk at a time; a failure leaves no chunk behind. Sets ``version.artifact_bytes``,
    ``artifact_chunks`` and ``artifact_sha256`` (saved by the caller with the version).
    """
    size = int(rec_settings.ARTIFACT_CHUNK_BYTES)
    digest, total, count = hashlib.sha256(), 0, 0
    using = router.db_for_write(ModelArtifactChunk)
    with transaction.atomic(using=using):
        write = _chunk_writer(using)
        for count, chunk in enumerate(artifact_format.chunks(parts, size), start=1):
            digest.update(chunk)
            total += len(chunk)
            write(version.pk, count - 1, chunk)
            del chunk  # before the next one is filled: one chunk in memory at a time
    version.artifact_bytes, version.artifact_chunks = total, count
    version.artifact_sha256 = digest.hexdigest()


def stored_chunks(version: ModelVersion) -> int:
    """How many chunks of ``version`` are in the database (activation checks it)."""
    return ModelArtifactChunk.objects.filter(version_id=version.pk).count()


def _raw_psycopg(connection):
    """The psycopg 3 connection under a PostgreSQL Django connection, else ``None``.

    Through it bytea travels in binary form: the ORM's text form is twice the size and a
    third of the speed."""
    if connection.vendor != "postgresql":
        return None
    try:
        import psycopg
    except ImportError:  # psycopg2: the ORM
        return None
    connection.ensure_connection()
    raw = connection.connection
    return raw if isinstance(raw, psycopg.Connection) else None


def _chunk_writer(using: str):
    connection = connections[using]
    raw = _raw_psycopg(connection)
    if raw is None:
        def write(version_id: int, index: int, data) -> None:
            ModelArtifactChunk.objects.using(using).create(
                version_id=version_id, index=index, data=data)
        return write
    import psycopg

    q = connection.ops.quote_name
    meta = ModelArtifactChunk._meta
    sql = (f"INSERT INTO {q(meta.db_table)} ({q(meta.get_field('version').column)}, "
           f"{q(meta.get_field('index').column)}, {q(meta.get_field('data').column)}) "
           "VALUES (%s, %s, %s)")

    def write(version_id: int, index: int, data) -> None:
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, [version_id, index, data], binary=True)
    return write


def _chunks(stored: StoredArtifact) -> Iterator[bytes]:
    """The version's chunks in order, one query and one chunk in memory at a time.

    Raises ``IncompleteArtifact`` when they do not match the row (a chunk missing, or
    sizes that do not add up); ``_Vanished`` when the version was deleted meanwhile."""
    if not stored.chunks:
        raise IncompleteArtifact(f"model version {stored.version_id} has no stored artifact")
    using = router.db_for_read(ModelArtifactChunk)
    connection = connections[using]
    raw = _raw_psycopg(connection)
    meta = ModelArtifactChunk._meta
    q = connection.ops.quote_name
    sql = (f"SELECT {q(meta.get_field('data').column)} FROM {q(meta.db_table)} "
           f"WHERE {q(meta.get_field('version').column)} = %s "
           f"AND {q(meta.get_field('index').column)} = %s")
    total = 0
    for index in range(stored.chunks):
        if raw is not None:
            import psycopg

            with psycopg.Cursor(raw) as cursor:
                cursor.execute(sql, [stored.version_id, index], binary=True)
                row = cursor.fetchone()
            data = None if row is None else row[0]
        else:
            data = (ModelArtifactChunk.objects.using(using)
                    .filter(version_id=stored.version_id, index=index)
                    .values_list("data", flat=True).first())
        if data is None:
            if not ModelVersion.objects.using(using).filter(pk=stored.version_id).exists():
                raise _Vanished
            raise IncompleteArtifact(f"model version {stored.version_id}: chunk {index} of "
                                     f"{stored.chunks} is missing")
        total += len(data)
        if total > stored.size:
            break
        yield data
        del data
    if total != stored.size:
        raise IncompleteArtifact(f"model version {stored.version_id}: chunks hold {total:,} "
                                 f"bytes, the version says {stored.size:,}")


class _Vanished(Exception):
    """The version was pruned while its chunks were being read."""


def _check_digest(stored: StoredArtifact, digest) -> None:
    if stored.sha256 and digest.hexdigest() != stored.sha256:
        raise IncompleteArtifact(f"model version {stored.version_id}: the chunks' SHA-256 "
                                 "differs from the version's")


def _read_into_memory(stored: StoredArtifact) -> bytearray | None:
    """The whole artifact in one buffer of this process, filled chunk by chunk."""
    out = bytearray(stored.size)
    digest, pos = hashlib.sha256(), 0
    try:
        for data in _chunks(stored):
            out[pos : pos + len(data)] = data
            digest.update(data)
            pos += len(data)
            del data
    except _Vanished:
        return None
    _check_digest(stored, digest)
    return out


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


def _download(stored: StoredArtifact, path: Path) -> mmap.mmap | None:
    """Write ``stored`` to ``path`` once per machine, chunk by chunk, then map it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+b") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be downloading it
        mapped = _mapped(path)
        if mapped is not None:
            return mapped
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            digest = hashlib.sha256()
            with open(tmp, "wb") as out:
                for data in _chunks(stored):
                    out.write(data)
                    digest.update(data)
                    del data  # before the next chunk is fetched
            _check_digest(stored, digest)
            os.replace(tmp, path)  # readers see the whole file or none
        except _Vanished:
            return None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
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
