"""Artifacts stored as ordered chunks: written piece by piece, read back whole or never."""

import hashlib

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import BusinessFactory, UserFactory
from xo_recommender import artifacts, recommend_for, record_interaction
from xo_recommender.exceptions import RebuildFailed
from xo_recommender.models import ModelArtifactChunk, ModelVersion
from xo_recommender.services import rebuild

CHUNK = 1024  # one KiB: the test model's artifact spans many chunks


def _interactions():
    places = [BusinessFactory() for _ in range(6)]
    users = [UserFactory() for _ in range(5)]
    for i, user in enumerate(users):
        for place in places[i % 3: i % 3 + 3]:
            record_interaction(user, place, "like")
    return users


@pytest.fixture
def small_chunks(settings, tmp_path):
    settings.XO_RECOMMENDER = {**getattr(settings, "XO_RECOMMENDER", {}),
                               "ARTIFACT_DIR": str(tmp_path), "ARTIFACT_CHUNK_BYTES": CHUNK}
    return tmp_path


def _stored_bytes(version_id):
    rows = (ModelArtifactChunk.objects.filter(version_id=version_id).order_by("index")
            .values_list("data", flat=True))
    return b"".join(bytes(r) for r in rows)


def _same_model(a, b):
    np.testing.assert_array_equal(a.collaborative.similarity_.data,
                                  b.collaborative.similarity_.data)
    np.testing.assert_array_equal(a.items.ids, b.items.ids)
    assert list(a.names) == list(b.names)


@pytest.mark.django_db
def test_a_multi_chunk_artifact_round_trips_through_the_file_and_memory(small_chunks, settings):
    users = _interactions()
    version = rebuild()
    chunks = list(ModelArtifactChunk.objects.filter(version=version).order_by("index"))
    assert version.artifact_chunks == len(chunks) > 2
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(len(c.data) == CHUNK for c in chunks[:-1]) and 0 < len(chunks[-1].data) <= CHUNK
    stored = _stored_bytes(version.pk)
    assert len(stored) == version.artifact_bytes
    assert hashlib.sha256(stored).hexdigest() == version.artifact_sha256

    mapped = artifacts.load_version(version.pk)
    files = list(small_chunks.glob("*.xoa"))
    assert len(files) == 1 and files[0].read_bytes() == stored
    assert not list(small_chunks.glob("*.tmp"))
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "ARTIFACT_DIR": False}
    in_memory = artifacts.load_version(version.pk)
    _same_model(mapped, in_memory)
    assert in_memory.to_bytes() == stored
    assert recommend_for(users[0], 3)  # served from the reassembled model


@pytest.mark.django_db
def test_a_failure_while_writing_chunks_leaves_the_previous_version_serving(small_chunks,
                                                                             monkeypatch):
    _interactions()
    live = rebuild()
    real = artifacts._chunk_writer

    def failing_after_two(using):
        write = real(using)

        def write_some(version_id, index, data):
            if index == 2:
                raise OSError("disk full")
            write(version_id, index, data)
        return write_some

    monkeypatch.setattr(artifacts, "_chunk_writer", failing_after_two)
    with pytest.raises(RebuildFailed):
        rebuild()
    failed = ModelVersion.objects.exclude(pk=live.pk).get()
    assert failed.status == ModelVersion.Status.FAILED and not failed.is_active
    assert not ModelArtifactChunk.objects.filter(version=failed).exists()
    assert artifacts.active_model()[0] == live.pk


@pytest.mark.django_db
def test_a_version_missing_a_chunk_is_never_activated(small_chunks, monkeypatch):
    _interactions()
    live = rebuild()
    real = artifacts._chunk_writer

    def skipping_one(using):
        write = real(using)
        return lambda version_id, index, data: None if index == 1 else write(
            version_id, index, data)

    monkeypatch.setattr(artifacts, "_chunk_writer", skipping_one)
    with pytest.raises(RebuildFailed, match="not every artifact chunk"):
        rebuild()
    assert ModelVersion.objects.get(is_active=True).pk == live.pk


@pytest.mark.django_db
@pytest.mark.parametrize("directory", [True, False])
@pytest.mark.parametrize("damage", ["missing", "altered", "extra"])
def test_a_damaged_artifact_is_refused_not_served(small_chunks, settings, directory, damage):
    _interactions()
    version = rebuild()
    if not directory:
        settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "ARTIFACT_DIR": False}
    chunks = ModelArtifactChunk.objects.filter(version=version)
    if damage == "missing":
        chunks.filter(index=1).delete()
    elif damage == "altered":
        chunks.filter(index=1).update(data=b"\0" * CHUNK)
    else:
        last = chunks.order_by("-index").first()
        chunks.filter(pk=last.pk).update(data=bytes(last.data) + b"more")
    with pytest.raises(artifacts.IncompleteArtifact):
        artifacts.active_model()
    assert not list(small_chunks.glob("*.xoa")) and not list(small_chunks.glob("*.tmp"))


@pytest.mark.django_db(transaction=True)
def test_a_version_stored_in_the_old_single_field_still_loads_after_the_migration(
        small_chunks):
    """Going back to 0004 folds the chunks into the old ``artifact`` column; a version
    written there the old way is cut into chunks by 0005 and loads like a new one."""
    _interactions()
    version = rebuild()
    payload = _stored_bytes(version.pk)
    app = "xo_recommender"
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes(app)
    executor.migrate([(app, "0004_sync_permission")])
    try:
        old_apps = executor.loader.project_state([(app, "0004_sync_permission")]).apps
        old_model = old_apps.get_model(app, "ModelVersion")
        assert bytes(old_model.objects.get(pk=version.pk).artifact) == payload
        old = old_model.objects.create(status="ready", artifact=payload)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    migrated = ModelVersion.objects.get(pk=old.pk)
    assert migrated.artifact_bytes == len(payload)
    assert migrated.artifact_chunks == -(-len(payload) // CHUNK) > 2
    assert migrated.artifact_sha256 == hashlib.sha256(payload).hexdigest()
    _same_model(artifacts.load_version(old.pk), artifacts.load_version(version.pk))
