"""The mapped artifact format: flat named arrays behind a JSON header, loaded without copies."""

import io
import json
import mmap

import numpy as np
import pytest

from xo_recommender.engine import artifact_format
from xo_recommender.engine.model import Query, Recommender

from .test_model import catalogue, events


def _model():
    rows = [(u, 100 + (u % 3), "like") for u in range(12)]
    rows += [(u, 101 + (u % 3), "save") for u in range(12)]
    return Recommender.fit(catalogue(5, [["Coffee"], ["Books"], ["Coffee", "Tea"], ["Tea"],
                                         ["Books"]]), events(rows))


def test_pack_unpack_round_trips_every_dtype_as_read_only_views():
    arrays = {
        "f32": np.arange(7, dtype=np.float32),
        "i64_2d": np.arange(12, dtype=np.int64).reshape(3, 4),
        "flags": np.array([True, False, True]),
        "words": np.array(["café", "b"]),
        "empty": np.zeros(0, dtype=np.int32),
        "last_empty": np.zeros((0, 3), dtype=np.float64),
    }
    blob = artifact_format.pack({"answer": 42, "nested": {"a": [1, 2]}}, arrays)
    meta, back = artifact_format.unpack(blob)
    assert meta == {"answer": 42, "nested": {"a": [1, 2]}}
    assert list(back) == list(arrays)
    raw = np.frombuffer(blob, dtype=np.uint8)
    for name, arr in arrays.items():
        np.testing.assert_array_equal(back[name], arr)
        assert back[name].dtype == arr.dtype and back[name].shape == arr.shape
        assert not back[name].flags.writeable
        if arr.size:
            assert np.shares_memory(back[name], raw), name  # a view, not a copy
            assert back[name].ctypes.data % 64 == raw.ctypes.data % 64  # aligned alike


def test_bad_artifacts_are_refused():
    with pytest.raises(TypeError, match="object dtype"):
        artifact_format.pack({}, {"o": np.array([object()])})
    blob = artifact_format.pack({}, {"a": np.arange(100, dtype=np.float64)})
    with pytest.raises(ValueError, match="bad magic"):
        artifact_format.unpack(b"PK" + blob[2:])
    with pytest.raises(ValueError, match="truncated"):
        artifact_format.unpack(blob[:-100])
    with pytest.raises(ValueError, match="truncated"):
        artifact_format.unpack(blob[:20])


def test_a_mapped_file_serves_the_same_page_and_shares_its_pages(tmp_path):
    model = _model()
    path = tmp_path / "model.xoa"
    path.write_bytes(model.to_bytes())
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    again = Recommender.from_bytes(mapped)
    query = Query(history=events([(99, 100, "like")]), interests=["tea"],
                  location=(33.7, -84.4), limit=4)
    assert again.recommend(query) == model.recommend(query)
    assert again.similar(101) == model.similar(101)
    # the collaborative matrix and the catalogue arrays point into the mapping
    page = np.frombuffer(mapped, dtype=np.uint8)
    s = again.collaborative.similarity_
    for arr in (s.data, s.indices, s.indptr, again.items.ids, again.prior,
                again.content.item_terms.data):
        assert np.shares_memory(arr, page)


def test_an_npz_artifact_from_before_the_mapped_format_still_loads():
    """Versions stored by the previous release must keep serving until the next rebuild."""
    model = _model()
    text = lambda values: np.frombuffer("\x1f".join(values).encode(), dtype=np.uint8)  # noqa: E731
    buf = io.BytesIO()
    np.savez(
        buf, format_version=np.int64(1),
        params=np.frombuffer(json.dumps(model.params.to_dict()).encode(), dtype=np.uint8),
        stats=np.frombuffer(json.dumps(model.stats).encode(), dtype=np.uint8),
        item_ids=model.items.ids, names=text(model.names),
        collaborative=np.frombuffer(model.collaborative.to_bytes(), dtype=np.uint8),
        content=np.frombuffer(model.content.to_bytes(), dtype=np.uint8),
        cat_data=model.categories.data, cat_indices=model.categories.indices,
        cat_indptr=model.categories.indptr,
        cat_shape=np.asarray(model.categories.shape, dtype=np.int64),
        category_names=text(model.category_names), latitudes=model.latitudes,
        longitudes=model.longitudes, prior=model.prior, ratings=model.ratings,
        active=model.active, trained_at=np.float64(model.trained_at),
    )
    again = Recommender.from_bytes(buf.getvalue())
    query = Query(history=events([(99, 101, "save")]), limit=3)
    assert again.recommend(query) == model.recommend(query)


def test_text_list_reads_strings_back_from_the_arrays():
    values = ["Café Noir", "", "東京 ramen", "x\x1fy"]
    blob = artifact_format.pack({}, artifact_format.text_arrays("names", values))
    _, arrays = artifact_format.unpack(blob)
    names = artifact_format.TextList(arrays["names"], arrays["names.offsets"])
    assert len(names) == 4
    assert list(names) == values
    assert names[-1] == "x\x1fy" and names[1:3] == ["", "東京 ramen"]
    with pytest.raises(IndexError):
        names[4]
    empty = artifact_format.text_arrays("n", [])
    assert list(artifact_format.TextList(empty["n"], empty["n.offsets"])) == []


@pytest.mark.parametrize("size", [1, 63, 64, 1000, 10**9])
def test_pieces_regrouped_into_chunks_are_the_packed_artifact(size):
    """What a store writes chunk by chunk is byte for byte ``pack``'s output, in pieces of
    exactly ``size`` (the last one shorter), whatever the size against the alignment."""
    model = _model()
    blob = model.to_bytes()
    parts = list(artifact_format.chunks(model.to_parts(), size))
    assert b"".join(parts) == blob
    assert all(len(p) == size for p in parts[:-1]) and 0 < len(parts[-1]) <= size
    assert len(parts) == -(-len(blob) // size)


def test_pieces_are_views_of_the_arrays_not_copies():
    big = np.arange(1 << 16, dtype=np.float32)
    views = [p for p in artifact_format.pieces({}, {"big": big}) if isinstance(p, memoryview)]
    assert len(views) == 1 and np.shares_memory(np.frombuffer(views[0], np.float32), big)


def test_chunks_refuse_a_size_below_one():
    with pytest.raises(ValueError):
        list(artifact_format.chunks([b"abc"], 0))


def test_writing_in_chunks_holds_one_chunk_not_a_second_artifact():
    """The point of ``pieces`` + ``chunks``: storing a 32 MiB artifact in 1 MiB chunks
    allocates about one chunk at a time, where ``pack`` allocates the whole artifact."""
    import tracemalloc

    arrays = {"similarity": np.ones(8 * 2**20, dtype=np.float32),
              "indices": np.arange(2**20, dtype=np.int32)}
    total = sum(a.nbytes for a in arrays.values())
    tracemalloc.start()
    try:
        written = 0
        for chunk in artifact_format.chunks(artifact_format.pieces({}, arrays), 2**20):
            written += len(chunk)
            del chunk
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        packed = len(artifact_format.pack({}, arrays))
        whole = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert written == packed > total
    assert streamed < 3 * 2**20 < total <= whole


def test_one_long_tag_does_not_widen_every_term():
    """Terms were a fixed-width array as wide as the longest: one 5,000-character tag
    among 3,000 short ones made the artifact about 200 times larger."""
    from tests.engine.synthetic import site
    from xo_recommender.engine.model import EngineParams, Recommender

    catalogue, events, _ = site("interest", n_users=40, n_items=30, per_user=5)
    catalogue.tags[0] = [f"t{i}" for i in range(3000)]
    short = len(Recommender.fit(catalogue, events, EngineParams()).to_bytes())
    catalogue.tags[1] = ["a" * 5000]
    model = Recommender.fit(catalogue, events, EngineParams())
    payload = model.to_bytes()
    assert len(payload) < short + 20_000  # the long tag's own bytes, not 3,000 × 5,000 × 4
    again = Recommender.from_bytes(payload)
    assert again.content.vocabulary == model.content.vocabulary
    assert list(again.content.labels) == list(model.content.labels)


def test_an_artifact_of_the_format_before_still_loads():
    """Version 2 held the terms as one fixed-width array: a model stored before this
    release must keep serving after the upgrade, until the next rebuild."""
    from tests.engine.synthetic import site
    from xo_recommender.engine.model import EngineParams

    catalogue, events, _ = site("interest", n_users=40, n_items=30, per_user=5)
    model = Recommender.fit(catalogue, events, EngineParams())
    meta, arrays = model.to_artifact()
    meta = {**meta, "format_version": 2}
    for name in ("content.terms", "content.labels"):
        values = getattr(model.content, name.split(".")[1]).tolist()
        del arrays[f"{name}.offsets"]
        arrays[name] = np.asarray(values, dtype=str)
    old = b"".join(bytes(p) for p in artifact_format.pieces(meta, arrays))
    again = Recommender.from_bytes(old)
    assert again.content.vocabulary == model.content.vocabulary
    query = Query(history=events.select(events.user_ids == 1), limit=5)
    assert [r.item_id for r in again.recommend(query)] == [
        r.item_id for r in model.recommend(query)]
    with pytest.raises(ValueError, match="unsupported model format"):
        Recommender.from_bytes(b"".join(bytes(p) for p in artifact_format.pieces(
            {**meta, "format_version": 99}, arrays)))
