"""Content match: user interests and engaged items against business categories/tags.

Each business is a bag of terms (its categories and tags). Rows of the item×term matrix
are TF-IDF weighted and L2-normalised, so a sparse product with an L2-normalised query
vector is the cosine similarity for all items at once (O(nnz), no loop over items).

* TF is ``1 + ln(count)``: a term listed twice (e.g. a category repeated by the caller
  to outweigh tags) counts more, with diminishing returns.
* IDF is the smoothed ``ln((1 + n) / (1 + df)) + 1``: rare terms ("vegan bakery")
  discriminate more than ubiquitous ones ("restaurant"), and a term on every item
  still keeps a small positive weight rather than vanishing.
* Terms are matched after ``normalise_term`` (case-folded, whitespace collapsed); the
  first spelling seen is kept as the display label for reasons.

Serialisation uses ``np.savez`` on arrays only (no pickle), so a stored artifact can be
loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from xo_recommender.engine.blend import top_k
from xo_recommender.engine.matrix import dense_rows, take_rows

__all__ = ["ContentModel", "normalise_term"]

_FORMAT_VERSION = 1
#: Dense term blocks (rows × vocabulary) up to this many cells explain a page; larger
#: vocabularies keep the rows sparse.
_DENSE_BLOCK = 65_536

UserRow = sp.spmatrix | sp.sparray | np.ndarray


def normalise_term(term: str) -> str:
    """Matching key for a term: case-folded with whitespace collapsed ("" if blank)."""
    return " ".join(str(term).casefold().split())


def _l2_normalise_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ m, dtype=np.float32)


def _strings(values: Sequence[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


class ContentModel:
    """TF-IDF item×term matrix with the vocabulary, and the content scorers over it."""

    def __init__(
        self,
        item_terms: sp.csr_matrix,
        terms: Sequence[str],
        labels: Sequence[str],
        idf: np.ndarray,
    ) -> None:
        self.item_terms = sp.csr_matrix(item_terms, dtype=np.float32)
        # object arrays: a fixed-width str array is as wide as the longest term, so one
        # 5,000-character tag made every term (and the artifact) 5,000 wide
        self.terms = _strings(terms)
        self.labels = _strings(labels)
        self.idf = np.asarray(idf, dtype=np.float32)
        if not (
            self.item_terms.shape[1]
            == self.terms.shape[0]
            == self.labels.shape[0]
            == self.idf.shape[0]
        ):
            raise ValueError("item_terms columns, terms, labels and idf must have one length")
        self.vocabulary: dict[str, int] = {t: j for j, t in enumerate(self.terms.tolist())}
        self._item_terms_t = self.item_terms.T.tocsr()

    @classmethod
    def build(cls, term_lists: Sequence[Iterable[str]]) -> ContentModel:
        """Build from one list of terms (categories + tags) per item index.

        Blank and ``None`` terms are skipped; an item with no terms gets an all-zero row
        and never matches anything. A bare string instead of a list raises ``TypeError``
        (it would silently be split into characters).
        """
        vocab: dict[str, int] = {}
        labels: list[str] = []
        rows: list[int] = []
        cols: list[int] = []
        for i, terms in enumerate(term_lists):
            if isinstance(terms, str):
                raise TypeError(f"item {i}: expected a list of terms, got the string {terms!r}")
            for term in terms or ():
                if term is None:
                    continue
                key = normalise_term(term)
                if not key:
                    continue
                j = vocab.get(key)
                if j is None:
                    j = vocab[key] = len(vocab)
                    labels.append(" ".join(str(term).split()))
                rows.append(i)
                cols.append(j)
        n_items = len(term_lists)
        counts = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(n_items, len(vocab)),
            dtype=np.float32,
        )
        counts.sum_duplicates()
        tf = counts.copy()
        tf.data = 1.0 + np.log(tf.data)
        df = np.bincount(counts.indices, minlength=len(vocab)).astype(np.float64)
        idf = (np.log((1.0 + n_items) / (1.0 + df)) + 1.0).astype(np.float32)
        weighted = sp.csr_matrix(tf @ sp.diags(idf), dtype=np.float32)
        return cls(_l2_normalise_rows(weighted), list(vocab), labels, idf)

    @property
    def n_items(self) -> int:
        return int(self.item_terms.shape[0])

    @property
    def n_terms(self) -> int:
        return int(self.item_terms.shape[1])

    # Scoring ------------------------------------------------------------------------

    def interest_vector(self, user_terms: Iterable[str]) -> np.ndarray:
        """L2-normalised IDF-weighted query over the vocabulary; unknown terms are ignored."""
        q = np.zeros(self.n_terms, dtype=np.float32)
        for term in user_terms:
            j = self.vocabulary.get(normalise_term(term))
            if j is not None:
                q[j] = self.idf[j]
        norm = float(np.linalg.norm(q))
        return q / norm if norm > 0 else q

    def interest_scores(self, user_terms: Iterable[str]) -> np.ndarray:
        """Cosine of each item's terms with the user's interests (float32, n_items)."""
        return self._scores(self.interest_vector(user_terms))

    def profile_vector(self, user_row: UserRow) -> np.ndarray:
        """L2-normalised term profile: the user's interaction weights × item term rows.

        ``user_row`` is the user's 1×n_items weight row (sparse, e.g. ``matrix.user_row``)
        or a dense vector of length n_items.
        """
        if sp.issparse(user_row):
            row = sp.csr_matrix(user_row, dtype=np.float32)
            if row.shape != (1, self.n_items):
                raise ValueError(f"user_row has shape {row.shape}, expected (1, {self.n_items})")
            row.data = np.nan_to_num(row.data, nan=0.0, posinf=0.0, neginf=0.0)
            p = (row @ self.item_terms).toarray().ravel().astype(np.float32)
        else:
            p = np.asarray(self._item_terms_t @ self._row_weights(user_row), np.float32).ravel()
        norm = float(np.linalg.norm(p))
        return p / norm if norm > 0 else p

    def profile_scores(self, user_row: UserRow) -> np.ndarray:
        """Cosine of each item with the user's engagement profile (float32, n_items).

        The user's own items score high too; the blend's candidate mask decides whether
        they may be shown. Negative weights pull the profile away from those items'
        terms; scores are clipped at 0.
        """
        return np.maximum(self._scores(self.profile_vector(user_row)), 0.0)

    def similar_items(self, item_idx: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to ``item_idx`` (itself excluded), with cosines.

        Only items sharing at least one term are returned, best first, ties to the
        lower index.
        """
        self._check_item(item_idx)
        sims = self._scores(self.item_terms[item_idx].toarray().ravel())
        sims[item_idx] = -np.inf
        sims[sims <= 0] = -np.inf
        idx = top_k(sims, n)
        return idx, sims[idx].astype(np.float32)

    # Explanations -------------------------------------------------------------------

    def matching_terms(self, item_idx: int, user_terms: Iterable[str], n: int = 3) -> list[str]:
        """Display labels of the user's interests found on the item, strongest first.

        "Strongest" is the term's contribution to the cosine (item weight × query
        weight), so a rare shared term is named before a common one.
        """
        return self.matching_terms_for([item_idx], user_terms, n)[0]

    def matching_terms_for(
        self, item_indices: Sequence[int] | np.ndarray, user_terms: Iterable[str], n: int = 1
    ) -> list[list[str]]:
        """``matching_terms`` for a page of results (one query vector, one pass over the
        page's terms: per result, its shared terms by descending contribution, ties to
        the lower term)."""
        q = self.interest_vector(user_terms)
        items = np.asarray(item_indices, dtype=np.int64).ravel()
        for item_idx in items.tolist():
            self._check_item(item_idx)
        m = self.item_terms
        starts, ends = m.indptr[items], m.indptr[items + 1]
        lengths = (ends - starts).astype(np.int64)
        pos = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(
            int(lengths.sum()))
        owner = np.repeat(np.arange(items.size), lengths)
        cols = m.indices[pos]
        contrib = m.data[pos] * q[cols]
        hit = contrib > 0
        owner, cols, contrib = owner[hit], cols[hit], contrib[hit]
        order = np.lexsort((cols, -contrib, owner))
        out: list[list[str]] = [[] for _ in range(items.size)]
        for r, label in zip(owner[order].tolist(), self.labels[cols[order]].tolist(),
                            strict=True):
            if len(out[r]) < n:
                out[r].append(label)
        return out

    def profile_sources(
        self, item_indices: Sequence[int] | np.ndarray, user_row: UserRow
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each result, the user's engaged item that makes it most similar.

        Returns ``(source_idx, strength)``: per result, the engaged item maximising
        interaction weight × cosine (the item itself excluded), or -1 and 0 when no
        engaged item shares a term. Feeds "Similar to {name} you liked".
        """
        results = np.asarray(item_indices, dtype=np.int64).ravel()
        for item_idx in results.tolist():
            self._check_item(item_idx)
        engaged, weights = self._engaged(user_row)
        source = np.full(results.shape[0], -1, dtype=np.int64)
        strength = np.zeros(results.shape[0], dtype=np.float32)
        if not engaged.size or not results.size:
            return source, strength
        if self.n_terms * (engaged.shape[0] + results.shape[0]) <= _DENSE_BLOCK:
            # a few dozen rows over ~100 terms: dense blocks, no sparse product to build
            sims = (dense_rows(self.item_terms, engaged)
                    @ dense_rows(self.item_terms, results).T)
        else:  # a large vocabulary: the rows stay sparse
            sims = (take_rows(self.item_terms, engaged)
                    @ take_rows(self.item_terms, results).T).toarray()
        contrib = sims * weights[:, None]
        contrib[engaged[:, None] == results[None, :]] = 0.0
        best = np.argmax(contrib, axis=0)
        top = contrib[best, np.arange(results.shape[0])]
        found = top > 0
        source[found] = engaged[best[found]]
        strength[found] = top[found]
        return source, strength

    # Serialisation ------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Arrays-only ``.npz`` payload (no pickle), for the model-artifact table."""
        buf = io.BytesIO()
        m = self.item_terms
        np.savez(
            buf,
            format_version=np.int64(_FORMAT_VERSION),
            data=m.data,
            indices=m.indices,
            indptr=m.indptr,
            shape=np.asarray(m.shape, dtype=np.int64),
            terms=np.asarray(self.terms.tolist(), dtype=str),  # npz holds no objects
            labels=np.asarray(self.labels.tolist(), dtype=str),
            idf=self.idf,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> ContentModel:
        """Inverse of ``to_bytes``; refuses unknown format versions."""
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            version = int(z["format_version"])
            if version != _FORMAT_VERSION:
                raise ValueError(f"unsupported content model format {version}")
            shape = tuple(int(x) for x in z["shape"])
            m = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            return cls(m, z["terms"], z["labels"], z["idf"])

    # Internals ----------------------------------------------------------------------

    def _scores(self, query: np.ndarray) -> np.ndarray:
        """``item_terms @ query``; a few-term query only touches those terms' postings.

        A typical interest query names a handful of terms, so gathering their columns
        (via the term×item transpose) is ~6x faster than the full sparse mat-vec; a broad
        profile touching much of the matrix uses the mat-vec.
        """
        nz = np.flatnonzero(query)
        t = self._item_terms_t
        starts = t.indptr[nz]
        lengths = t.indptr[nz + 1] - starts
        touched = int(lengths.sum())
        if touched * 3 > self.item_terms.nnz:
            return np.asarray(self.item_terms @ query, dtype=np.float32).ravel()
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        pos = offsets + np.arange(touched)
        weights = t.data[pos] * np.repeat(query[nz], lengths)
        return np.bincount(t.indices[pos], weights=weights, minlength=self.n_items).astype(
            np.float32
        )

    def _engaged(self, user_row: UserRow) -> tuple[np.ndarray, np.ndarray]:
        """The items with a positive weight in the user's row (ascending) and those
        weights; a canonical sparse row is read as it is, not made dense first."""
        if sp.issparse(user_row):
            row = sp.csr_matrix(user_row)
            if row.has_canonical_format and row.shape == (1, self.n_items):
                data = np.nan_to_num(np.asarray(row.data, dtype=np.float32), nan=0.0,
                                     posinf=0.0, neginf=0.0)
                keep = data > 0
                return row.indices[keep].astype(np.int64), data[keep]
        w = self._row_weights(user_row)
        engaged = np.flatnonzero(w > 0)
        return engaged, w[engaged]

    def _row_weights(self, user_row: UserRow) -> np.ndarray:
        if sp.issparse(user_row):
            w = np.asarray(user_row.toarray(), dtype=np.float32).ravel()
        else:
            w = np.asarray(user_row, dtype=np.float32).ravel()
        if w.shape[0] != self.n_items:
            raise ValueError(f"user_row has {w.shape[0]} items, the model has {self.n_items}")
        return np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)

    def _check_item(self, item_idx: int) -> None:
        if not 0 <= int(item_idx) < self.n_items:
            raise IndexError(f"item index {item_idx} outside 0..{self.n_items - 1}")
