"""``iforest``: Isolation Forest (Liu, Ting & Zhou 2008) — random trees that cut the training
rows apart; a row that is isolated in few cuts is unlike the rest. Fitted by scikit-learn
(``pip install 'genba[ml]'``), kept as plain arrays (each tree's split feature, threshold,
children and leaf size) and scored by numpy, so a saved model loads and scores without
scikit-learn and without unpickling anything.

The paper's score ``s = 2^(-E[h(x)] / c(ψ))`` (about 0.5 for a usual row, towards 1 for an
isolated one) is given as its odds, ``s / (1 - s)`` (about 1 for a usual row, without bound for
an isolated one): the window's mean then weighs a clear outlier as PCA's T² does, instead of
averaging it away between 0.5 and 1. Each signal's contribution is its share of the splits on the row's path in
each tree, weighted by how anomalous that tree found the row, times the score: the signal
whose cuts isolate the row most carries most of it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from genba.ai._detector import F64, Detector
from genba.errors import ModelError

EULER = 0.5772156649015329


def average_path(n: F64) -> F64:
    """``c(n)``: the mean path length of an unsuccessful search in a binary search tree of
    ``n`` rows — the depth a leaf of ``n`` rows stands for.

    >>> average_path(np.array([1.0, 2.0, 256.0])).round(4).tolist()
    [0.0, 1.0, 10.2448]
    """
    n = np.asarray(n, dtype=np.float64)
    big = 2.0 * (np.log(np.maximum(n - 1.0, 1.0)) + EULER) - 2.0 * (n - 1.0) / np.maximum(n, 1.0)
    return np.asarray(np.where(n > 2, big, np.where(n == 2, 1.0, 0.0)))


def sklearn_needed(what: str, scoring: bool = False) -> Any:
    """scikit-learn, or an error naming ``what`` needs it and the extra that brings it."""
    try:
        import sklearn
    except ImportError:
        raise ModelError(
            f"{what} is fitted with scikit-learn, which is not installed: pip install "
            "'genba[ml]'"
            + (
                " (it scores with it too)"
                if scoring
                else " (scoring a saved model does not need it)"
            )
        ) from None
    return sklearn


class IsolationForestDetector(Detector):
    fitted_by: ClassVar[tuple[str, ...]] = ("scikit-learn",)
    kind: ClassVar[str] = "iforest"
    DEFAULTS: ClassVar[dict[str, Any]] = {"trees": 100, "samples": 256, "seed": 0}

    def _fit(self, x: F64) -> None:
        sklearn_needed(f"detector {self.kind!r}")
        from sklearn.ensemble import IsolationForest

        psi = min(int(self.params["samples"]), len(x))
        forest = IsolationForest(
            n_estimators=int(self.params["trees"]), max_samples=psi,
            random_state=int(self.params["seed"]),
        ).fit(x)  # fmt: skip
        feats, thr, left, right, size, roots = [], [], [], [], [], []
        at = 0
        for tree, cols in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = tree.tree_
            leaf = t.children_left < 0
            feats.append(np.where(leaf, -1, np.asarray(cols)[np.maximum(t.feature, 0)]))
            thr.append(t.threshold)
            left.append(np.where(leaf, -1, t.children_left + at))
            right.append(np.where(leaf, -1, t.children_right + at))
            size.append(t.n_node_samples.astype(np.float64))
            roots.append(at)
            at += t.node_count
        self.state = {
            "feature": np.concatenate(feats).astype(np.int64),
            "threshold": np.concatenate(thr),
            "left": np.concatenate(left).astype(np.int64),
            "right": np.concatenate(right).astype(np.int64),
            "leaf_depth": average_path(np.concatenate(size)),
            "roots": np.array(roots, dtype=np.int64),
            "c": np.array([average_path(np.array([float(psi)]))[0]]),
        }

    def _raw(self, x: F64) -> F64:
        step = 4096  # rows × trees × signals at a time: a few tens of MB
        return np.concatenate([self._raw_part(x[a : a + step]) for a in range(0, len(x), step)] or [np.zeros((0, x.shape[1]))])  # fmt: skip

    def _raw_part(self, x: F64) -> F64:
        st = self.state
        feature, threshold, left, right = st["feature"], st["threshold"], st["left"], st["right"]
        n, s = x.shape
        node = np.broadcast_to(st["roots"], (n, len(st["roots"]))).copy()  # rows × trees
        depth = np.zeros(node.shape)
        splits = np.zeros((n, len(st["roots"]), s))
        rows = np.arange(n)[:, None]
        trees = np.arange(node.shape[1])[None, :]
        while True:
            f = feature[node]
            inner = f >= 0
            if not inner.any():
                break
            fc = np.maximum(f, 0)
            go_left = x[rows, fc] <= threshold[node]
            nxt = np.where(go_left, left[node], right[node])
            splits[rows, trees, fc] += inner
            depth += inner
            node = np.where(inner, nxt, node)
        h = depth + st["leaf_depth"][node]  # rows × trees
        c = float(st["c"][0]) if st["c"][0] > 0 else 1.0
        per_tree = 2.0 ** (-h / c)
        s_ = 2.0 ** (-h.mean(axis=1) / c)
        score = s_ / np.maximum(1.0 - s_, 1e-12)  # odds: unbounded, so an isolated row weighs
        share = splits / np.maximum(depth, 1.0)[:, :, None]
        share[depth == 0] = 1.0 / s  # a tree that never cut: no signal to blame
        weighted = (per_tree[:, :, None] * share).sum(axis=1) / per_tree.sum(axis=1)[:, None]
        return np.asarray(weighted * score[:, None])
