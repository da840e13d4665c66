"""Item-to-item collaborative model whose serving form is one sparse item×item matrix S.

Scoring a user is ``x_u @ S`` with ``x_u`` the user's weighted interaction row built at
request time, so a new interaction changes the very next answer without a rebuild.

Algorithm (chosen by measurement on a validation split of ml-100k train, see
``benchmarks/quality_ml100k.py --tune``): EASE (Steck 2019) with two changes that each
measured better than plain EASE:

* dropout-style regularisation (EDLAE, Steck 2020): the Gram diagonal gets
  ``λ + p/(1-p)·G_ii`` instead of ``λ``, so popular items are shrunk more;
* inverse user-activity weighting: each user row is scaled by ``|u|^(-α/2)`` before the
  Gram is formed, so very active users do not dominate co-occurrence.

``λ`` is given relative to the mean Gram diagonal (``l2_rel``) so one setting transfers
across data sizes. Up to ``exact_max_items`` items the closed form is exact (a dense
inverse). Above it a dense 50k×50k inverse is out of reach, so the model solves EASE
exactly on the ``head_items`` most popular items and covers every pair involving
a tail item with single-predictor ridge coefficients ``G_ij / (G_ii(1+p/(1-p)) + λ)``
computed from a chunked sparse Gram, rescaled by least squares to match the EASE block.
Each row of S keeps its ``top_k`` largest-magnitude weights.

The scalable path makes one pass over the Gram, in popularity order so the head is a
contiguous block: spans of item rows of bounded work run on a few threads (the sparse
product releases the GIL), each cut to its rows' top k before the next span starts, so
memory stays near the matrix plus S. Measured against ``implicit`` ALS in
``benchmarks/engine_scale.py --compare-als``.
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

try:  # the product without scipy's counting pass; plain ``@`` when this is absent
    from scipy.sparse._sparsetools import csr_matmat as _csr_matmat
except ImportError:  # pragma: no cover - depends on the scipy version
    _csr_matmat = None

__all__ = ["CollaborativeModel"]

_FORMAT = "xo-collab-v1"


def _as_row(user_row: Any, n_items: int) -> sp.csr_matrix:
    """Accept a 1×n sparse row or a dense length-n vector; return a float32 CSR row."""
    if sp.issparse(user_row):
        row = sp.csr_matrix(user_row, dtype=np.float32)
    else:
        row = sp.csr_matrix(np.asarray(user_row, dtype=np.float32).reshape(1, -1))
    if row.shape != (1, n_items):
        raise ValueError(f"user_row must have shape (1, {n_items}), got {row.shape}")
    return row


def _top_k_per_row(m: sp.csr_matrix, k: int | None) -> sp.csr_matrix:
    """Keep the ``k`` largest-|value| entries of every CSR row (all when ``k`` is None).

    Only rows longer than ``k`` are touched, each with a linear-time argpartition.
    """
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    if k is None or m.nnz == 0:
        return m
    lengths = np.diff(m.indptr)
    long_rows = np.flatnonzero(lengths > k)
    if long_rows.size == 0:
        return m
    keep = np.ones(m.nnz, dtype=bool)
    absdata = np.abs(m.data)
    for r in long_rows.tolist():
        lo, hi = m.indptr[r], m.indptr[r + 1]
        keep[lo:hi] = False
        keep[lo + np.argpartition(-absdata[lo:hi], k - 1)[:k]] = True
    rows = np.repeat(np.arange(m.shape[0]), lengths)[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape, dtype=m.dtype)


def _dense_top_k(b: np.ndarray, k: int | None, block: int = 1024) -> sp.coo_matrix:
    """Sparsify a dense matrix to the ``k`` largest-|value| entries per row (as COO).

    Rows are processed in blocks so the argpartition index array stays small.
    """
    n_rows, n_cols = b.shape
    if k is None or k >= n_cols:
        r, c = np.nonzero(b)
        return sp.coo_matrix((b[r, c], (r, c)), shape=(n_rows, n_cols))
    rows, cols, vals = [], [], []
    for lo in range(0, n_rows, block):
        part = b[lo : lo + block]
        idx = np.argpartition(-np.abs(part), k - 1, axis=1)[:, :k]
        r = np.repeat(np.arange(part.shape[0]), k)
        c = idx.ravel()
        v = part[r, c]
        nz = v != 0
        rows.append(r[nz] + lo)
        cols.append(c[nz])
        vals.append(v[nz])
    return sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, n_cols),
    )


def _inverse_spd(a: np.ndarray) -> np.ndarray:
    """In-place inverse of a symmetric positive definite matrix via Cholesky (LAPACK)."""
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (a,))
    c, info = potrf(a, lower=False, overwrite_a=True, clean=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info={info})")
    inv, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed (info={info})")
    # potri fills the upper triangle only; mirror it block by block (no full-size copy).
    n, bs = inv.shape[0], 512
    for a in range(0, n, bs):
        b = min(a + bs, n)
        inv[a:b, :a] = inv[:a, a:b].T
        blk = inv[a:b, a:b]
        inv[a:b, a:b] = np.triu(blk) + np.triu(blk, 1).T
    return inv


class CollaborativeModel:
    """EASE-family item-item model; ``fit`` on a user×item matrix, serve with ``score``.

    Parameters (defaults are the validated choice):
        l2_rel: L2 penalty λ as a multiple of the mean Gram diagonal.
        dropout: EDLAE dropout probability p (0 gives plain EASE).
        user_alpha: user rows are scaled by |u|^(-user_alpha/2) before the Gram.
        top_k: weights kept per row of S (None keeps all; memory grows as n·top_k).
        exact_max_items: above this catalogue size the scalable approximation is used.
        head_items: items solved exactly by EASE in the approximation (the most popular).
        chunk_flops: work budget per Gram chunk in the approximation (bounds memory).
        threads: threads for the approximation's Gram pass (default: cores, at most 4);
            the result does not depend on it.
    """

    def __init__(
        self,
        l2_rel: float = 4.0,
        dropout: float = 0.8,
        user_alpha: float = 0.5,
        top_k: int | None = 500,
        exact_max_items: int = 8000,
        head_items: int = 4096,
        chunk_flops: int = 4_000_000,
        threads: int | None = None,
    ) -> None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if top_k is not None and top_k < 1:
            raise ValueError("top_k must be positive or None")
        self.l2_rel = float(l2_rel)
        self.dropout = float(dropout)
        self.user_alpha = float(user_alpha)
        self.top_k = top_k
        self.exact_max_items = int(exact_max_items)
        self.head_items = int(head_items)
        self.chunk_flops = int(chunk_flops)
        self.threads = threads
        self.similarity_: sp.csr_matrix | None = None
        self.item_popularity_: np.ndarray | None = None
        self.path_: str | None = None

    # ------------------------------------------------------------------ fitting
    def _params(self) -> dict[str, Any]:
        return {
            "l2_rel": self.l2_rel,
            "dropout": self.dropout,
            "user_alpha": self.user_alpha,
            "top_k": self.top_k,
            "exact_max_items": self.exact_max_items,
            "head_items": self.head_items,
            "chunk_flops": self.chunk_flops,
        }

    def _weighted(self, x: sp.csr_matrix) -> sp.csr_matrix:
        activity = np.diff(x.indptr).astype(np.float64)
        scale = np.power(np.maximum(activity, 1.0), -self.user_alpha / 2.0).astype(np.float32)
        xw = x.copy()
        xw.data *= np.repeat(scale, np.diff(x.indptr))
        return xw

    def fit(self, x: sp.spmatrix) -> CollaborativeModel:
        """Learn S from a user×item matrix (e.g. ``matrix.build_matrix``); returns self."""
        x = sp.csr_matrix(x, dtype=np.float32)
        if not x.has_canonical_format or (x.data == 0).any():
            x = x.copy()  # never edit the caller's matrix
            x.sum_duplicates()
            x.eliminate_zeros()
        n_items = x.shape[1]
        self.item_popularity_ = np.bincount(x.indices, minlength=n_items).astype(np.float32)
        xw = self._weighted(x)
        diag = np.bincount(xw.indices, weights=np.square(xw.data, dtype=np.float64),
                           minlength=n_items)
        active = diag > 0
        mean_diag = float(diag[active].mean()) if active.any() else 1.0
        lam = self.l2_rel * mean_diag
        drop = self.dropout / (1.0 - self.dropout)
        if n_items <= self.exact_max_items:
            self.path_ = "exact"
            s = self._fit_exact(xw, diag, lam, drop)
        else:
            self.path_ = "approx"
            s = self._fit_approx(xw, diag, lam, drop)
        s = sp.csr_matrix(s, dtype=np.float32)
        s.sum_duplicates()
        s.sort_indices()
        self.similarity_ = s
        return self

    def _ease_block(self, gram: np.ndarray, diag: np.ndarray, lam: float, drop: float):
        gram[np.diag_indices_from(gram)] += lam + drop * diag
        p = _inverse_spd(gram)
        pd = np.diag(p).copy()
        p /= -pd[None, :]
        p[np.diag_indices_from(p)] = 0.0
        return p

    def _fit_exact(self, xw, diag, lam, drop) -> sp.spmatrix:
        n = xw.shape[1]
        dtype = np.float64 if n <= 3000 else np.float32
        gram = (xw.T @ xw).toarray().astype(dtype, copy=False)
        b = self._ease_block(gram, diag.astype(dtype), lam, drop)
        return sp.csr_matrix(_dense_top_k(b, self.top_k), shape=(n, n))

    def _fit_approx(self, xw, diag, lam, drop) -> sp.spmatrix:
        n = xw.shape[1]
        k = self.top_k
        nh = min(self.head_items, self.exact_max_items, n)
        # Work in popularity order so the exactly solved head is the index range [0, nh).
        order = np.argsort(-self.item_popularity_, kind="stable")
        x_rows = sp.csr_matrix(xw[:, order])
        x_cols = sp.csr_matrix(x_rows.T)
        diag, denom = diag[order], (diag[order] * (1.0 + drop) + lam).astype(np.float32)
        parts = _GramParts(x_rows, x_cols, nh, k)

        # One pass over the sparse Gram, item rows in spans of bounded work, on
        # ``threads`` threads (scipy's sparse product releases the GIL): head×head
        # entries fill the dense Gram of the exact block; every other off-diagonal entry
        # will be a single-predictor coefficient G_ij / denom_i and is cut to its row's
        # top k at once, so no span's product outlives its own step.
        with ThreadPoolExecutor(max_workers=self._n_threads()) as pool:
            pieces = list(pool.map(parts.rows, self._spans(parts.work, nh)))
        gram = parts.gram
        del parts, x_rows, x_cols
        lengths = np.concatenate([p[0] for p in pieces])
        cols = np.concatenate([p[1] for p in pieces])
        vals = np.concatenate([p[2] for p in pieces])
        del pieces
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        del lengths

        # Exact EASE on the head; the single-predictor coefficients are rescaled by the
        # least-squares factor that best matches them to the EASE block.
        head_single = gram / denom[:nh, None]
        np.fill_diagonal(head_single, 0.0)
        b = self._ease_block(gram, diag[:nh].astype(np.float32), lam, drop)
        del gram
        norm = float(np.vdot(head_single, head_single))
        scale = float(np.vdot(b, head_single) / norm) if norm > 0 else 1.0
        del head_single
        head_block = _dense_top_k(b, k)
        del b
        row_scale = np.float32(scale) / denom
        vals *= np.repeat(row_scale, np.diff(indptr))

        # Head rows: the EASE block's entries join that row's tail coefficients and the
        # row is cut to k again; tail rows are final. Rows are then put back in item
        # order and columns relabelled, all on CSR arrays (no COO round trip).
        end = int(indptr[nh])
        head_rows = sp.csr_matrix(
            (
                np.concatenate([vals[:end], head_block.data.astype(np.float32)]),
                (
                    np.concatenate([np.repeat(np.arange(nh), np.diff(indptr[: nh + 1])),
                                    head_block.row]),
                    np.concatenate([cols[:end], head_block.col]),
                ),
            ),
            shape=(nh, n),
            dtype=np.float32,
        )
        head_rows = _top_k_per_row(head_rows, k)
        permuted = sp.csr_matrix(
            (
                np.concatenate([head_rows.data, vals[end:]]),
                np.concatenate([head_rows.indices.astype(np.int32), cols[end:]]),
                np.concatenate([head_rows.indptr, indptr[nh + 1 :] - end + head_rows.nnz]),
            ),
            shape=(n, n),
        )
        del head_rows, vals, cols
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.arange(n)
        s = permuted[inverse]
        del permuted
        s.indices = order.astype(s.indices.dtype)[s.indices]
        s.has_sorted_indices = False
        s.sort_indices()
        return s

    def _n_threads(self) -> int:
        return self.threads or min(os.cpu_count() or 1, 4)

    def _spans(self, work: np.ndarray, nh: int):
        """Contiguous item ranges whose Gram work stays under ``chunk_flops``; the head
        ends a span so every span is all head or all tail."""
        start, acc = 0, 0
        for item, w in enumerate(work.tolist()):
            if item > start and (acc + w > self.chunk_flops or item == nh):
                yield start, item
                start, acc = item, 0
            acc += w
        if start < work.size:
            yield start, int(work.size)

    # ------------------------------------------------------------------ serving
    def _require_fit(self) -> sp.csr_matrix:
        if self.similarity_ is None:
            raise RuntimeError("model is not fitted")
        return self.similarity_

    @property
    def n_items(self) -> int:
        return int(self._require_fit().shape[0])

    def score(self, user_row: Any) -> np.ndarray:
        """Dense float32 scores for every item: ``x_u @ S`` (seen items are not removed)."""
        s = self._require_fit()
        row = _as_row(user_row, s.shape[0])
        return np.asarray((row @ s).toarray(), dtype=np.float32).ravel()

    def similar_items(self, item_idx: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items that item ``item_idx`` most strongly recommends (positive
        weights only, itself excluded), best first, ties to the lower index, with weights.
        """
        s = self._require_fit()
        lo, hi = s.indptr[item_idx], s.indptr[item_idx + 1]
        cols, vals = s.indices[lo:hi], s.data[lo:hi]
        pos = (vals > 0) & (cols != item_idx)
        cols, vals = cols[pos], vals[pos]
        order = np.lexsort((cols, -vals))[:n]
        return cols[order].astype(np.int64), vals[order].astype(np.float32)

    def explain(self, user_row: Any, item_idx: int, top: int = 1) -> list[int]:
        """Items of the user that contribute most (positively) to ``item_idx``'s score.

        Contribution of history item i is ``x_u[i] · S[i, item_idx]``; this is what a
        "because you saved X" reason names.
        """
        s = self._require_fit()
        row = _as_row(user_row, s.shape[0])
        hist, weight = row.indices, row.data
        contrib = weight * np.asarray(s[hist, item_idx].toarray()).ravel()
        pos = contrib > 0
        hist, contrib = hist[pos], contrib[pos]
        order = np.lexsort((hist, -contrib))[:top]
        return [int(hist[i]) for i in order]

    # ------------------------------------------------------------ serialisation
    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)`` for ``artifact_format``: S as flat CSR arrays (int32 index
        arrays while they fit, so loading them back needs no dtype conversion, i.e. no
        copy of a memory-mapped artifact)."""
        s = self._require_fit()
        idx = np.int32 if max(s.nnz, s.shape[0]) < np.iinfo(np.int32).max else np.int64
        meta = {"format": _FORMAT, "params": self._params(), "path": self.path_,
                "shape": list(s.shape)}
        arrays = {
            "data": s.data.astype(np.float32, copy=False),
            "indices": s.indices.astype(idx, copy=False),
            "indptr": s.indptr.astype(idx, copy=False),
            "popularity": self.item_popularity_.astype(np.float32, copy=False),
        }
        return meta, arrays

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]
                    ) -> CollaborativeModel:
        """Inverse of ``to_arrays``; S wraps the given arrays without copying them."""
        if meta.get("format") != _FORMAT:
            raise ValueError(f"unknown model artifact format {meta.get('format')!r}")
        model = cls(**meta["params"])
        model.similarity_ = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]),
            shape=tuple(int(v) for v in meta["shape"]),
        )
        model.item_popularity_ = arrays["popularity"]
        model.path_ = meta["path"]
        return model

    def to_bytes(self) -> bytes:
        """Serialise with ``np.savez`` (no pickle); the standalone form, used in tests."""
        s = self._require_fit()
        meta = {"format": _FORMAT, "params": self._params(), "path": self.path_}
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            data=s.data.astype(np.float32),
            indices=s.indices.astype(np.int32),
            indptr=s.indptr.astype(np.int64),
            shape=np.asarray(s.shape, dtype=np.int64),
            popularity=self.item_popularity_.astype(np.float32),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CollaborativeModel:
        """Inverse of ``to_bytes``; refuses artifacts of another format."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("format") != _FORMAT:
                raise ValueError(f"unknown model artifact format {meta.get('format')!r}")
            model = cls(**meta["params"])
            shape = tuple(int(v) for v in z["shape"])
            model.similarity_ = sp.csr_matrix(
                (z["data"], z["indices"], z["indptr"]), shape=shape, dtype=np.float32
            )
            model.item_popularity_ = z["popularity"]
            model.path_ = meta["path"]
        return model


def _row_top_k_mask(lengths: np.ndarray, magnitude: np.ndarray, k: int) -> np.ndarray:
    """Mask keeping the ``k`` largest ``magnitude`` entries of each row (rows contiguous)."""
    keep = np.ones(magnitude.size, dtype=bool)
    ends = np.cumsum(lengths)
    for r in np.flatnonzero(lengths > k).tolist():
        hi = int(ends[r])
        lo = hi - int(lengths[r])
        keep[lo:hi] = False
        keep[lo + np.argpartition(magnitude[lo:hi], hi - lo - k)[hi - lo - k:]] = True
    return keep


class _GramParts:
    """The Gram pass of the approximation over popularity-ordered items (head first).

    ``rows(span)`` runs on a worker thread: spans are disjoint, so their writes to the
    dense head Gram never overlap.
    """

    def __init__(self, x_rows: sp.csr_matrix, x_cols: sp.csr_matrix, nh: int,
                 k: int | None) -> None:
        self.x_cols, self.nh, self.k = x_cols, nh, k
        self.x_all = x_rows
        self.x_head = sp.csr_matrix(x_rows[:, :nh])
        self.x_tail = sp.csr_matrix(x_rows[:, nh:])
        self.gram = np.zeros((nh, nh), dtype=np.float32)
        # Work of item i: Σ over its users of their degree, a bound on its Gram row nnz.
        users_deg = np.diff(x_rows.indptr).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(users_deg[x_cols.indices])])
        self.work = cum[x_cols.indptr[1:]] - cum[x_cols.indptr[:-1]]

    def rows(self, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row lengths, columns, G values)`` of rows ``lo:hi`` outside the head block
        and off the diagonal, each row cut to its ``k`` largest by magnitude."""
        lo, hi = span
        a = self.x_cols[lo:hi]
        if hi <= self.nh:
            head = _product(a, self.x_head, self.work[lo:hi])
            self.gram[lo:hi] = head.toarray()
            del head
            p = _product(a, self.x_tail, self.work[lo:hi])
            lengths, cols, vals = np.diff(p.indptr), p.indices + self.nh, p.data
        else:
            p = _product(a, self.x_all, self.work[lo:hi])
            counts = np.diff(p.indptr)
            rows = np.repeat(np.arange(lo, hi, dtype=p.indices.dtype), counts)
            off = p.indices != rows
            lengths = counts - np.bincount(rows[~off] - lo, minlength=hi - lo)
            del rows
            cols, vals = p.indices[off], p.data[off]
        del p
        if self.k is not None:
            mask = _row_top_k_mask(lengths, np.abs(vals), self.k)
            cols, vals = cols[mask], vals[mask]
            lengths = np.minimum(lengths, self.k)
        return lengths, cols.astype(np.int32, copy=False), vals


def _product(a: sp.csr_matrix, b: sp.csr_matrix, work: np.ndarray) -> sp.csr_matrix:
    """``a @ b`` for CSR matrices, skipping scipy's counting pass when possible.

    ``work`` bounds each output row's length, so the output can be allocated up front;
    scipy's own ``@`` (which counts first) is the fallback. About a third faster.
    """
    bound = int(np.minimum(work, b.shape[1]).sum())
    idx = np.int32
    if _csr_matmat is None or bound >= np.iinfo(idx).max or b.shape[1] >= np.iinfo(idx).max:
        return sp.csr_matrix(a @ b)
    indptr = np.empty(a.shape[0] + 1, dtype=idx)
    indices = np.empty(bound, dtype=idx)
    data = np.empty(bound, dtype=np.result_type(a.dtype, b.dtype))
    _csr_matmat(a.shape[0], b.shape[1],
                a.indptr.astype(idx, copy=False), a.indices.astype(idx, copy=False), a.data,
                b.indptr.astype(idx, copy=False), b.indices.astype(idx, copy=False), b.data,
                indptr, indices, data)
    nnz = int(indptr[-1])
    return sp.csr_matrix((data[:nnz], indices[:nnz], indptr), shape=(a.shape[0], b.shape[1]))
