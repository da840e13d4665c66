"""Readers for offline-evaluation data: plain TSV splits and RecBole atomic files.

They exist so ``evaluate_recommender`` can run the engine on public data. Every
problem in a file raises ``DatasetError`` with a one-line message naming the file and
the line, because the operator reading it has to fix that file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DatasetError",
    "Interactions",
    "read_atomic_inter",
    "read_atomic_items",
    "read_tsv",
]

TSV_HEADER = ["user_id", "item_id", "rating", "timestamp"]
INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file and line."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, problem: str) -> None:
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {problem}".replace("\n", " "))
        self.path = os.fspath(path)
        self.line = line


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays, one entry per (user, item) event, in file order."""

    user_id: np.ndarray  # int64
    item_id: np.ndarray  # int64
    rating: np.ndarray  # float32
    timestamp: np.ndarray  # float64, unix seconds

    def __len__(self) -> int:
        return int(self.user_id.shape[0])


def _open_lines(path: str | os.PathLike[str]):
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the caller's with
    except FileNotFoundError:
        raise DatasetError(path, None, "file not found") from None
    except OSError as exc:
        raise DatasetError(path, None, f"cannot open: {exc.strerror}") from None
    return f


def _parse_int(value: str, path, lineno: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DatasetError(path, lineno, f"{column} must be an integer, got {value!r}") from None


def _parse_float(value: str, path, lineno: int, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DatasetError(path, lineno, f"{column} must be a number, got {value!r}") from None


def _read_four_columns(path, expected_header: list[str]) -> Interactions:
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    stamps: list[float] = []
    with _open_lines(path) as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if header != expected_header:
            raise DatasetError(
                path, 1, f"header must be {' '.join(expected_header)!r}, got {' '.join(header)!r}"
            )
        names = [h.split(":")[0] for h in expected_header]
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 4:
                raise DatasetError(
                    path, lineno, f"expected 4 tab-separated fields, got {len(fields)}"
                )
            users.append(_parse_int(fields[0], path, lineno, names[0]))
            items.append(_parse_int(fields[1], path, lineno, names[1]))
            ratings.append(_parse_float(fields[2], path, lineno, names[2]))
            stamps.append(_parse_float(fields[3], path, lineno, names[3]))
    return Interactions(
        user_id=np.asarray(users, dtype=np.int64),
        item_id=np.asarray(items, dtype=np.int64),
        rating=np.asarray(ratings, dtype=np.float32),
        timestamp=np.asarray(stamps, dtype=np.float64),
    )


def read_tsv(path: str | os.PathLike[str]) -> Interactions:
    """Read a split file whose header is exactly ``user_id item_id rating timestamp``."""
    return _read_four_columns(path, TSV_HEADER)


def read_atomic_inter(path: str | os.PathLike[str]) -> Interactions:
    """Read a RecBole ``.inter`` file (``user_id:token item_id:token rating:float
    timestamp:float``); ids must be integers because the engine keys on int ids."""
    return _read_four_columns(path, INTER_HEADER)


def read_atomic_items(path: str | os.PathLike[str]) -> dict[int, list[str]]:
    """Read a RecBole ``.item`` file: item id -> categories (the ``class:token_seq`` genres).

    Other columns (title, year, ...) are ignored; an item without genres maps to ``[]``.
    """
    result: dict[int, list[str]] = {}
    with _open_lines(path) as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if "item_id:token" not in header or "class:token_seq" not in header:
            raise DatasetError(
                path, 1, "header must contain 'item_id:token' and 'class:token_seq' columns"
            )
        id_col = header.index("item_id:token")
        class_col = header.index("class:token_seq")
        for lineno, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                raise DatasetError(
                    path, lineno, f"expected {len(header)} tab-separated fields, got {len(fields)}"
                )
            item = _parse_int(fields[id_col], path, lineno, "item_id")
            result[item] = fields[class_col].split()
    return result
