"""One model file per machine: downloaded once, memory-mapped by every process."""

import hashlib
import threading

import numpy as np
import pytest

from tests.factories import BusinessFactory, UserFactory
from xo_recommender import artifacts, record_interaction
from xo_recommender.models import ModelArtifactChunk
from xo_recommender.services import rebuild


@pytest.fixture
def built(db, settings, tmp_path):
    settings.XO_RECOMMENDER = {**getattr(settings, "XO_RECOMMENDER", {}),
                               "ARTIFACT_DIR": str(tmp_path)}
    places = [BusinessFactory() for _ in range(4)]
    for user in [UserFactory() for _ in range(3)]:
        for place in places[:3]:
            record_interaction(user, place, "like")
    return rebuild()


def test_a_version_is_downloaded_once_then_served_from_the_mapped_file(built, tmp_path,
                                                                       django_assert_num_queries):
    version_id, model = artifacts.active_model()
    assert version_id == built.pk
    files = list(tmp_path.glob("*.xoa"))
    assert len(files) == 1
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == built.artifact_sha256
    s = model.collaborative.similarity_
    assert not s.data.flags.writeable and not s.data.flags.owndata  # a view, not a copy
    # Another process (here: after forgetting) maps the file: the stored blob is not read
    # again, and only the two small lookups run.
    ModelArtifactChunk.objects.filter(version_id=built.pk).update(data=b"not read again")
    artifacts.forget_loaded()
    with django_assert_num_queries(2):  # active id, creation time
        again = artifacts.active_model()[1]
    np.testing.assert_array_equal(again.collaborative.similarity_.data, s.data)


def test_without_a_directory_the_model_is_loaded_from_the_database(built, settings, tmp_path):
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "ARTIFACT_DIR": False}
    assert artifacts.active_model()[0] == built.pk
    assert list(tmp_path.glob("*.xoa")) == []


def test_an_unwritable_directory_falls_back_to_memory(built, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "ARTIFACT_DIR": str(blocker / "x")}
    assert artifacts.active_model()[0] == built.pk


def test_old_files_are_pruned_to_keep_versions(built, settings, tmp_path):
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "KEEP_VERSIONS": 2}
    seen = []
    for _ in range(3):
        seen.append(artifacts.active_model()[0])
        artifacts.forget_loaded()
        rebuild()
    artifacts.active_model()
    assert len(set(seen)) == 3
    assert len(list(tmp_path.glob("*.xoa"))) == 2


def test_a_version_pruned_while_loading_is_asked_again_without_deadlock(built, monkeypatch):
    """The reload after a vanished version used to recurse into the held, non-re-entrant
    lock and hang the process; now it loops."""
    real = artifacts.load_version
    calls = []

    def vanishing_once(version_id):
        calls.append(version_id)
        return None if len(calls) == 1 else real(version_id)

    monkeypatch.setattr(artifacts, "load_version", vanishing_once)

    class Bounded:
        """The real lock's semantics, but re-entry fails the test instead of hanging it."""

        lock = threading.Lock()

        def __enter__(self):
            assert self.lock.acquire(timeout=5), "active_model re-entered its lock"

        def __exit__(self, *exc):
            self.lock.release()

    monkeypatch.setattr(artifacts, "_lock", Bounded())
    assert artifacts.active_model()[0] == built.pk
    assert calls == [built.pk, built.pk]
