"""Embedding space: cosine similarity, nearest neighbours, analogies and PCA, NumPy in, NumPy out.

    import llmc
    from llmc import latent
    model = llmc.load_default()
    E = model.token_embeddings                            # (V, d) read-only view
    words = model.tokenizer.vocab()                       # readable token strings, index = id
    latent.nearest(E[model.tokenizer.encode(" God")[0]], E, k=5, labels=words)
    latent.analogy(" man", " king", " woman", E, labels=words)   # king - man + woman
    xy = latent.project_2d(E[:500])                        # (500, 2) PCA coordinates for a scatter plot

Every product of a large matrix runs through llmc.matmul (BLAS sgemm in C, float32); selections of the k best
are O(N) (np.argpartition) and then sorted. Scores are cosine similarities in [-1, 1]. Ties in a score are broken
by the lower row index, so results are deterministic.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .ops import matmul

__all__ = ["Neighbor", "PCA", "analogy", "cosine_similarity", "nearest", "normalize", "pca", "project_2d",
           "plot_2d"]


class Neighbor(NamedTuple):
    """One result of nearest(): the candidate's row, its label (None without labels) and the cosine score."""
    index: int
    label: object
    score: float


class PCA(NamedTuple):
    """The result of pca(X, k)."""
    coords: np.ndarray            # (N, k): X projected on the components
    components: np.ndarray        # (k, d): unit principal directions, largest variance first
    explained_variance: np.ndarray        # (k,): variance along each component (divided by N - 1, as sklearn)
    explained_variance_ratio: np.ndarray  # (k,): its share of the total variance
    mean: np.ndarray              # (d,): the mean that was subtracted


def _matrix(x, name: str, ndim=(2,)) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}")
    if a.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return a


def normalize(x) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); a zero row stays zero (its norm is taken as max(norm, 1e-12))."""
    a = _matrix(x, "x", (1, 2))
    n = np.sqrt(np.einsum("...i,...i->...", a, a, dtype=np.float64))
    return (a / np.maximum(n, 1e-12)[..., None]).astype(np.float32)


def _cos(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(Q, d) x (N, d) unit rows -> (Q, N). Computed as (C @ Q^T)^T so the big matrix is never copied."""
    return np.ascontiguousarray(matmul(c, np.ascontiguousarray(q.T)).T)


def cosine_similarity(a, b=None) -> np.ndarray:
    """Cosine similarity matrix (N, M) of the rows of a (N, d) and b (M, d) (b = a when omitted); 1-D inputs are
    single rows. Float32, through BLAS."""
    A = normalize(_matrix(a, "a", (1, 2)).reshape(-1, np.shape(a)[-1]))
    B = A if b is None else normalize(_matrix(b, "b", (1, 2)).reshape(-1, np.shape(b)[-1]))
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"a has rows of {A.shape[1]} values, b of {B.shape[1]}")
    return _cos(A, B)


def _labels(labels, n: int):
    if labels is None:
        return None
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} candidates")
    return labels


def _top(scores: np.ndarray, k: int, exclude) -> np.ndarray:
    """Row indices of the k highest scores (ties: lower index first), skipping `exclude`."""
    s = scores.astype(np.float64)
    if exclude:
        s = s.copy()
        s[list(exclude)] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(s):
        kth = np.partition(s, len(s) - k)[len(s) - k]  # the k-th largest value: keep every score >= it
        cand = np.flatnonzero(s >= kth)
    else:
        cand = np.arange(len(s))
    order = np.lexsort((cand, -s[cand]))  # score descending, then index ascending
    return cand[order[:k]]


def nearest(query, candidates, k: int = 5, labels: Sequence | None = None, exclude: Sequence[int] = ()):
    """The k candidates most similar (cosine) to the query.

    query: (d,) one vector -> a list of Neighbor(index, label, score); (Q, d) -> a list of such lists.
    candidates: (N, d), e.g. model.token_embeddings or model.embed(texts). labels: the N texts or tokens that
    name the rows (returned in each Neighbor). exclude: row indices never returned (e.g. the query's own token).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    C = _matrix(candidates, "candidates")
    q = _matrix(query, "query", (1, 2))
    single = q.ndim == 1
    Q = q.reshape(1, -1) if single else q
    if Q.shape[1] != C.shape[1]:
        raise ValueError(f"query has {Q.shape[1]} values per row, candidates have {C.shape[1]}")
    names = _labels(labels, C.shape[0])
    for e in exclude:
        if not 0 <= int(e) < C.shape[0]:
            raise ValueError(f"exclude index {e} is outside [0, {C.shape[0]})")
    S = _cos(normalize(Q), normalize(C))
    out = []
    for row in S:
        idx = _top(row, int(k), exclude)
        out.append([Neighbor(int(i), None if names is None else names[i], float(row[i])) for i in idx])
    return out[0] if single else out


def _vector(x, E, names, what: str):
    """x as (vector, row index or None): a vector, a row index into E, or a label of `names`."""
    if isinstance(x, str):
        if names is None:
            raise ValueError(f"{what} = {x!r} is a label, but no labels were given")
        try:
            i = names.index(x)
        except ValueError:
            raise ValueError(f"{what} = {x!r} is not among the labels") from None
        return E[i], i
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        if E is None:
            raise ValueError(f"{what} = {x} is a row index, but no embedding matrix was given")
        if not 0 <= x < E.shape[0]:
            raise ValueError(f"{what} = {x} is outside [0, {E.shape[0]})")
        return E[int(x)], int(x)
    return _matrix(x, what, (1,)), None


def analogy(a, b, c, candidates=None, labels: Sequence | None = None, k: int = 5, exclude_inputs: bool = True):
    """a : b :: c : ?  — the vector b - a + c, and (with candidates) its nearest neighbours.

    a, b, c: vectors, row indices into candidates, or labels (looked up in labels). Without candidates the vector
    (d,) is returned. With candidates: nearest(b - a + c, candidates, k, labels), leaving out the rows of a, b and c
    when exclude_inputs (the usual convention: "king - man + woman" would otherwise often return "king").
    Example: analogy(" man", " king", " woman", E, labels=vocab)."""
    E = None if candidates is None else _matrix(candidates, "candidates")
    names = None if E is None else _labels(labels, E.shape[0])
    (va, ia), (vb, ib), (vc, ic) = (_vector(x, E, names, w) for x, w in ((a, "a"), (b, "b"), (c, "c")))
    if not va.shape == vb.shape == vc.shape:
        raise ValueError(f"a, b and c have different sizes: {va.shape}, {vb.shape}, {vc.shape}")
    v = (vb.astype(np.float64) - va + vc).astype(np.float32)
    if E is None:
        return v
    ex = {i for i in (ia, ib, ic) if i is not None} if exclude_inputs else set()
    return nearest(v, E, k, labels=names, exclude=sorted(ex))


def pca(X, k: int = 2) -> PCA:
    """Principal component analysis of the rows of X (N, d): the top-k directions of variance.

    Computed from the d x d covariance (one BLAS product X^T X in float32, eigen-decomposition in float64), so the
    cost is O(N d^2) and N can be large. Components are unit vectors with a deterministic sign (the entry of largest
    magnitude is positive); they equal sklearn.decomposition.PCA's up to that sign."""
    A = _matrix(X, "X")
    N, d = A.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise ValueError(f"k must be an int in [1, {d}] (the number of columns), got {k!r}")
    if N < 2:
        raise ValueError(f"pca needs at least 2 rows, got {N}")
    mean = A.mean(axis=0, dtype=np.float64)
    Xc = np.ascontiguousarray((A - mean).astype(np.float32))
    G = matmul(np.ascontiguousarray(Xc.T), Xc).astype(np.float64)  # (d, d) = Xc^T Xc
    G = (G + G.T) / 2  # exactly symmetric for eigh
    w, V = np.linalg.eigh(G / (N - 1))
    order = np.argsort(w)[::-1][:k]
    comps = V[:, order].T  # (k, d)
    big = np.argmax(np.abs(comps), axis=1)
    comps *= np.sign(comps[np.arange(k), big])[:, None]
    var = np.maximum(w[order], 0.0)
    total = max(float(np.maximum(w, 0).sum()), 1e-300)
    comps32 = comps.astype(np.float32)
    coords = matmul(Xc, np.ascontiguousarray(comps32.T))
    return PCA(coords, comps32, var.astype(np.float32), (var / total).astype(np.float32), mean.astype(np.float32))


def project_2d(X) -> np.ndarray:
    """(N, 2) coordinates of the rows of X on their first two principal components (for scatter plots)."""
    return pca(X, 2).coords


def plot_2d(X, labels: Sequence[str] | None = None, ax=None, **scatter_kwargs):
    """Scatter the rows of X on their first two principal components, each point annotated with its label.
    Needs matplotlib. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    xy = project_2d(X)
    names = _labels(labels, xy.shape[0])
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(xy[:, 0], xy[:, 1], **scatter_kwargs)
    if names is not None:
        for (x, y), s in zip(xy, names):
            ax.annotate(str(s), (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return ax
