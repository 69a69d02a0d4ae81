"""``hst``: Half-Space Trees (Tan, Ting & Liu 2011), a streaming detector that keeps learning —
the algorithm of river's ``HalfSpaceTrees``, columnar in numpy.

Each of ``trees`` random trees of depth ``height`` cuts the signals' range at every node
(as river: a signal drawn by the width of its range at that node, cut uniformly in the middle
70 % of it; ranges are the training data's, scaled to [0, 1]). Every node counts the rows that reach it in two windows of ``mass_window``
rows: the latest (``l_mass``, learning) and the reference (``r_mass``, scoring); each time the
latest fills it becomes the reference. A row walks each tree to a leaf, or to the first
node whose reference mass is under 10 % of the window, adding ``r_mass × 2^depth`` at each
node (river's walk): a row in a crowded part of the space scores high. genba's score is the
surprise, ``log2(mass_window × (2^(height+1) - 1) / walk)`` averaged over the trees — 0 at
the most crowded, higher for rarer rows (river's ``1 - Σ walk / max`` stays in [0, 1], where
one outlier cannot outweigh the window's other rows); each signal's contribution is its share of the cuts on the row's paths,
weighted by each tree's surprise.

It keeps learning: :meth:`learn` adds rows to the latest window (the node feeds it each row it
scored that raised no alarm, so it follows slow changes of normal and does not learn a fault).
``fit`` learns the training rows in order and leaves the last full window as the reference.
What it learns in the node stays in memory; each new version starts from the historian.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from genba.ai._detector import F64, Detector, _modes
from genba.errors import ModelError

PADDING = 0.15
"""As river: a split falls in the middle 70 % of its node's range."""


class HalfSpaceTreesDetector(Detector):
    kind: ClassVar[str] = "hst"
    streaming: ClassVar[bool] = True
    DEFAULTS: ClassVar[dict[str, Any]] = {"trees": 25, "height": 8, "mass_window": 250, "seed": 0}

    def _fit(self, x: F64) -> None:
        trees, height = int(self.params["trees"]), int(self.params["height"])
        window = int(self.params["mass_window"])
        if len(x) < window:
            raise ModelError(
                f"detector 'hst' needs a full mass window of training rows ({window}), got "
                f"{len(x)}; widen the training window or lower mass_window"
            )
        rng = np.random.default_rng(int(self.params["seed"]))
        s = x.shape[1]
        inner = 2**height - 1
        feature = np.zeros((trees, inner), dtype=np.int64)
        split = np.zeros((trees, inner))
        lo, hi = np.zeros((trees, inner, s)), np.ones((trees, inner, s))
        t = np.arange(trees)
        for node in range(inner):  # heap order: a node's range is set before its children's
            width = hi[:, node] - lo[:, node]  # as river: a signal by its range's width,
            cum = np.cumsum(width, axis=1)  # split uniformly inside the middle 70 %
            f = np.minimum((cum < rng.random(trees)[:, None] * cum[:, -1:]).sum(axis=1), s - 1)
            a, w = lo[t, node, f], width[t, f]
            at = rng.uniform(a + PADDING * w, a + (1 - PADDING) * w)
            feature[:, node], split[:, node] = f, at
            for child, side in ((2 * node + 1, hi), (2 * node + 2, lo)):
                if child < inner:
                    lo[:, child], hi[:, child] = lo[:, node], hi[:, node]
                    side[t, child, f] = at
        low, span = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        self.state = {
            "feature": feature.astype(np.int64),
            "split": split,
            "low": low,
            "span": np.where(span > 0, span, 1.0),
            "r_mass": np.zeros((trees, 2 * inner + 1)),
            "l_mass": np.zeros((trees, 2 * inner + 1)),
            "seen": np.zeros(1),
        }
        self.learn_raw(x)

    def learn(self, x: F64, mode: F64 | None = None) -> None:
        """Add rows (the model's signals, in order; ``mode`` as in training) to the latest
        window; rows with a gap, or of a mode never trained, are skipped."""
        z = np.asarray(x, dtype=np.float64)
        if self.norm:
            z = self._normalise(z, _modes(mode, len(z)))
        ok = ~np.isnan(z).any(axis=1)
        self.learn_raw(z[ok][:, self.used])

    def learn_raw(self, x: F64) -> None:
        """:meth:`learn` of rows already in the model's columns (used signals, normalised)."""
        st = self.state
        window = int(self.params["mass_window"])
        at = 0
        while at < len(x):
            room = window - int(st["seen"][0]) % window
            part = x[at : at + room]
            nodes, _ = self._paths(part, stop_light=False)
            for tree in range(nodes.shape[1]):
                st["l_mass"][tree] += np.bincount(nodes[:, tree].ravel(), minlength=st["l_mass"].shape[1])  # fmt: skip
            st["seen"][0] += len(part)
            at += len(part)
            if int(st["seen"][0]) % window == 0:
                st["r_mass"][:] = st["l_mass"]
                st["l_mass"][:] = 0.0

    def _paths(self, x: F64, *, stop_light: bool) -> tuple[np.ndarray, np.ndarray]:
        """Every node on each row's path in each tree (rows × trees × height+1; -1 past
        where it stopped: with ``stop_light``, after the first node whose reference mass is
        under 10 % of the window), and the signal each step down splits on (rows × trees ×
        height, -1 where it did not go down)."""
        st = self.state
        height = int(self.params["height"])
        inner = st["split"].shape[1]
        n, trees = len(x), st["split"].shape[0]
        z = (x - st["low"]) / st["span"]
        node = np.zeros((n, trees), dtype=np.int64)
        t = np.arange(trees)[None, :]
        nodes = np.full((n, trees, height + 1), -1, dtype=np.int64)
        feats = np.full((n, trees, height), -1, dtype=np.int64)
        alive = np.ones((n, trees), dtype=bool)
        limit = 0.1 * float(self.params["mass_window"])
        for d in range(height + 1):
            nodes[:, :, d] = np.where(alive, node, -1)
            if d == height:
                break
            if stop_light:
                alive &= st["r_mass"][t, node] >= limit
            k = np.minimum(node, inner - 1)
            f = st["feature"][t, k]
            feats[:, :, d] = np.where(alive, f, -1)
            left = np.take_along_axis(z, f, axis=1) < st["split"][t, k]
            node = np.where(alive, np.where(left, 2 * node + 1, 2 * node + 2), node)
        return nodes, feats

    def _raw(self, x: F64) -> F64:
        step = 8192
        return np.concatenate([self._raw_part(x[a : a + step]) for a in range(0, len(x), step)] or [np.zeros((0, x.shape[1]))])  # fmt: skip

    def _raw_part(self, x: F64) -> F64:
        st = self.state
        height, window = int(self.params["height"]), float(self.params["mass_window"])
        nodes, feats = self._paths(x, stop_light=True)
        t = np.arange(nodes.shape[1])[None, :, None]
        on = nodes >= 0
        mass = np.where(on, st["r_mass"][t, np.maximum(nodes, 0)], 0.0)
        walk = (mass * 2.0 ** np.arange(height + 1)).sum(axis=2)  # river's sum along the walk
        top = window * (2.0 ** (height + 1) - 1)
        surprise = np.log2(top / np.maximum(walk, 1.0))  # rows × trees
        s = x.shape[1]
        counts = np.zeros((len(x), nodes.shape[1], s))
        r, tr, d = np.nonzero(feats >= 0)
        np.add.at(counts, (r, tr, feats[r, tr, d]), 1.0)
        total = counts.sum(axis=2, keepdims=True)
        share = np.where(total > 0, counts / np.maximum(total, 1.0), 1.0 / s)
        weight = surprise / np.maximum(surprise.sum(axis=1, keepdims=True), 1e-12)
        score = surprise.mean(axis=1)
        return np.asarray((weight[:, :, None] * share).sum(axis=1) * score[:, None])
