"""User×item interaction matrices and the id <-> index mappings around them.

The collaborative model works on contiguous indices; the host speaks in database ids.
``IdIndex`` keeps the two apart and sorts ids so that "lower index" means "lower id"
(the evaluation protocol's tie rule). ``interaction_weights`` is where repeated
events and old events are discounted, so the model and the request-time user row
(``user_row``) weigh interactions the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "IdIndex",
    "build_matrix",
    "interaction_weights",
    "user_row",
]


@dataclass(frozen=True)
class IdIndex:
    """Bijection between external integer ids (sorted ascending) and 0..n-1."""

    ids: np.ndarray

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=np.int64)
        if ids.ndim != 1 or (ids.size > 1 and not (np.diff(ids) > 0).all()):
            raise ValueError("IdIndex ids must be unique and ascending; use IdIndex.from_ids")
        object.__setattr__(self, "ids", ids)

    @classmethod
    def from_ids(cls, ids: np.ndarray | list[int]) -> IdIndex:
        """Build from any iterable of ids; duplicates are collapsed."""
        return cls(np.unique(np.asarray(ids, dtype=np.int64)))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def to_index(self, ids: np.ndarray | list[int], missing: int = -1) -> np.ndarray:
        """Map ids to indices; unknown ids map to ``missing`` (default -1)."""
        q = np.asarray(ids, dtype=np.int64)
        if len(self) == 0:
            return np.full(q.shape, missing, dtype=np.int64)
        pos = np.searchsorted(self.ids, q)
        pos_c = np.minimum(pos, len(self) - 1)
        found = self.ids[pos_c] == q
        return np.where(found, pos_c, missing).astype(np.int64)

    def to_ids(self, index: np.ndarray | list[int]) -> np.ndarray:
        """Map indices back to external ids."""
        return self.ids[np.asarray(index, dtype=np.int64)]


#: The most one interaction's own weight counts (as the API and ``record_interaction``
#: allow): one absurd value stored by other means must not overflow float32 sums and
#: turn every similarity into NaN.
MAX_WEIGHT = 1e6


def interaction_weights(
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
    last_seen: np.ndarray | None = None,
    *,
    now: float | None = None,
    half_life: float | None = None,
    n: int | None = None,
) -> np.ndarray:
    """Per-interaction weight = weight × (1 + ln count) × 0.5 ** (age / half_life),
    the weight taken within ±``MAX_WEIGHT`` (NaN as 0).

    Repeats count with diminishing returns (the tenth view is not worth ten first
    views); ``half_life`` (seconds, ``None`` = no decay) lets old taste fade. ``now``
    defaults to the newest ``last_seen``; future timestamps count as age 0.
    """
    size = next((len(a) for a in (weight, count, last_seen) if a is not None), n)
    if size is None:
        raise ValueError("give at least one array or n")
    w = np.ones(size, dtype=np.float64) if weight is None else np.clip(
        np.nan_to_num(np.asarray(weight, np.float64), nan=0.0), -MAX_WEIGHT, MAX_WEIGHT)
    if count is not None:
        c = np.maximum(np.asarray(count, dtype=np.float64), 1.0)
        w = w * (1.0 + np.log(c))
    if half_life is not None and last_seen is not None and size:
        if half_life <= 0:
            raise ValueError("half_life must be positive or None")
        t = np.asarray(last_seen, dtype=np.float64)
        ref = float(t.max()) if now is None else float(now)
        age = np.maximum(ref - t, 0.0)
        w = w * np.power(0.5, age / float(half_life))
    return w


def build_matrix(
    user_index: np.ndarray,
    item_index: np.ndarray,
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
    last_seen: np.ndarray | None = None,
    *,
    shape: tuple[int, int] | None = None,
    now: float | None = None,
    half_life: float | None = None,
) -> sp.csr_matrix:
    """Weighted user×item CSR matrix (float32); duplicate (user, item) entries are summed.

    Summing lets several interaction types on the same item (a view and a save) add up.
    """
    u = np.asarray(user_index, dtype=np.int64)
    i = np.asarray(item_index, dtype=np.int64)
    if u.shape != i.shape:
        raise ValueError("user_index and item_index must have the same length")
    w = interaction_weights(weight, count, last_seen, now=now, half_life=half_life, n=len(u))
    if shape is None:
        shape = (int(u.max()) + 1 if u.size else 0, int(i.max()) + 1 if i.size else 0)
    m = sp.csr_matrix((w.astype(np.float32), (u, i)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def user_row(
    item_index: np.ndarray,
    n_items: int,
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
    last_seen: np.ndarray | None = None,
    *,
    now: float | None = None,
    half_life: float | None = None,
) -> sp.csr_matrix:
    """One user's 1×n_items row, weighted like ``build_matrix``; built at request time.

    Unknown items (index < 0, e.g. businesses added after the last rebuild) are dropped.
    """
    i = np.asarray(item_index, dtype=np.int64)
    keep = (i >= 0) & (i < n_items)

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a)[keep]

    i = i[keep]
    w = interaction_weights(pick(weight), pick(count), pick(last_seen), now=now,
                            half_life=half_life, n=len(i)).astype(np.float32)
    # build_matrix's row without its COO stage: one row's entries in their order, then
    # the same sort and sum of duplicates (so the same float32 sums) and zeros dropped
    index = np.int32 if max(i.size, n_items) <= np.iinfo(np.int32).max else np.int64
    row = sp.csr_matrix((w, i.astype(index), np.array([0, i.size], dtype=index)),
                        shape=(1, n_items))
    row.sum_duplicates()
    row.eliminate_zeros()
    return row


def row_spans(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``rows``' entries lie in ``m.data`` / ``m.indices`` (in row order), each
    entry's position in ``rows``, and the rows' ``indptr`` in that order."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = m.indptr[rows].astype(np.int64)
    lengths = m.indptr[rows + 1].astype(np.int64) - starts
    indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(int(indptr[-1]))
    return pos, np.repeat(np.arange(rows.shape[0]), lengths), indptr


def take_rows(m: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``m[rows]`` for a CSR matrix, the same arrays gathered straight from its spans:
    on a request's handful of rows scipy's general indexing costs more than the gather."""
    pos, _, indptr = row_spans(m, rows)
    out = sp.csr_matrix((m.data[pos], m.indices[pos], indptr),
                        shape=(indptr.shape[0] - 1, m.shape[1]))
    out.has_sorted_indices = m.has_sorted_indices
    return out


def dense_rows(m: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """``m[rows].toarray()`` without the sparse matrix in between: a request's few rows
    of a narrow matrix (a page's term rows) are a small dense block; building and
    multiplying scipy matrices of that size costs more than the arithmetic. Duplicate
    entries in a row are added, as ``toarray`` does."""
    pos, owner, indptr = row_spans(m, rows)
    out = np.zeros((indptr.shape[0] - 1, m.shape[1]), m.dtype)
    if m.has_canonical_format:
        out[owner, m.indices[pos]] = m.data[pos]
    else:
        np.add.at(out, (owner, m.indices[pos]), m.data[pos])
    return out
