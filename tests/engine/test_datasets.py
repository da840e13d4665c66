"""Readers: good files parse, bad files name the file and the line."""

import numpy as np
import pytest

from xo_recommender.engine.datasets import (
    DatasetError,
    read_atomic_inter,
    read_atomic_items,
    read_tsv,
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_tsv(tmp_path):
    text = "user_id\titem_id\trating\ttimestamp\n1\t10\t4\t100\n2\t20\t3.5\t200\n"
    path = write(tmp_path, "t.tsv", text)
    data = read_tsv(path)
    assert len(data) == 2
    assert data.user_id.tolist() == [1, 2]
    assert data.item_id.tolist() == [10, 20]
    assert data.rating.tolist() == [4.0, 3.5]
    assert data.timestamp.dtype == np.float64


def test_read_atomic_inter(tmp_path):
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t3\t5\t881250949\n"
    data = read_atomic_inter(write(tmp_path, "a.inter", text))
    assert data.user_id.tolist() == [7]
    assert data.timestamp.tolist() == [881250949.0]


def test_read_atomic_items_genres_become_categories(tmp_path):
    text = (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "2\tNothing\t1990\t\n"
    )
    items = read_atomic_items(write(tmp_path, "a.item", text))
    assert items == {1: ["Animation", "Children's", "Comedy"], 2: []}


def test_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.tsv"
    with pytest.raises(DatasetError, match="nope.tsv"):
        read_tsv(missing)


def test_wrong_header_names_line_1(tmp_path):
    path = write(tmp_path, "h.tsv", "user\titem\trating\ttimestamp\n1\t2\t3\t4\n")
    with pytest.raises(DatasetError) as exc:
        read_tsv(path)
    assert str(exc.value).startswith(f"{path}:1:")
    assert "\n" not in str(exc.value)


def test_non_numeric_id_names_the_line(tmp_path):
    text = "user_id\titem_id\trating\ttimestamp\n1\t2\t3\t4\n1\tabc\t3\t4\n"
    path = write(tmp_path, "n.tsv", text)
    with pytest.raises(DatasetError) as exc:
        read_tsv(path)
    assert str(exc.value).startswith(f"{path}:3:")
    assert "item_id" in str(exc.value)


def test_wrong_field_count(tmp_path):
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\n"
    path = write(tmp_path, "f.inter", text)
    with pytest.raises(DatasetError, match=r"f.inter:2:"):
        read_atomic_inter(path)


def test_item_file_without_class_column(tmp_path):
    path = write(tmp_path, "x.item", "item_id:token\tmovie_title:token_seq\n1\tA\n")
    with pytest.raises(DatasetError, match=r"x.item:1:"):
        read_atomic_items(path)


def test_item_file_bad_id(tmp_path):
    path = write(tmp_path, "y.item", "item_id:token\tclass:token_seq\n1\tDrama\nX\tDrama\n")
    with pytest.raises(DatasetError, match=r"y.item:3:"):
        read_atomic_items(path)
