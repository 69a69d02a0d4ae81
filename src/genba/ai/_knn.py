"""``knn``: similarity to remembered normal operation, in the spirit of MSET (the
multivariate state estimation technique of nuclear and power-plant monitoring): the model
keeps up to ``memory`` standardised training rows; a new row is estimated as the mean of its
``k`` nearest remembered rows, and its score is the mean squared residual — each signal's
squared residual share its contribution. Unlike PCA it assumes no linear relation: any state
seen in training (several operating points) is normal, anything between them is not."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from genba.ai._detector import F64, Detector

CHUNK = 4096
"""Rows scored at a time (bounds the distance matrix to CHUNK × memory)."""


class KnnDetector(Detector):
    kind: ClassVar[str] = "knn"
    DEFAULTS: ClassVar[dict[str, Any]] = {"k": 5, "memory": 2000}

    def _fit(self, x: F64) -> None:
        mean, sd = x.mean(axis=0), x.std(axis=0)
        z = (x - mean) / sd
        n = int(self.params["memory"])
        if len(z) > n:  # evenly through the window: every operating point it saw
            z = z[np.linspace(0, len(z) - 1, n).astype(np.int64)]
        self.state = {"mean": mean, "sd": sd, "memory": np.ascontiguousarray(z)}

    def _raw(self, x: F64) -> F64:
        return self._residuals(x, skip=0)

    def _train_raw(self, x: F64) -> F64:
        return self._residuals(x, skip=1)  # the nearest of a remembered row is itself

    def _residuals(self, x: F64, *, skip: int) -> F64:
        st = self.state
        mem = st["memory"]
        k = max(1, min(int(self.params["k"]), len(mem) - skip))
        z = (x - st["mean"]) / st["sd"]
        out = np.empty_like(z)
        mem_sq = (mem**2).sum(axis=1)
        for a in range(0, len(z), CHUNK):
            part = z[a : a + CHUNK]
            d = (part**2).sum(axis=1)[:, None] - 2 * part @ mem.T + mem_sq[None, :]
            order = np.argpartition(d, k + skip - 1, axis=1)[:, : k + skip]
            if skip:  # drop the nearest of each row
                closest = np.take_along_axis(d, order, axis=1).argmin(axis=1)
                keep = np.ones(order.shape, dtype=bool)
                keep[np.arange(len(order)), closest] = False
                order = order[keep].reshape(len(order), k)
            near = order
            estimate = mem[near].mean(axis=1)
            out[a : a + CHUNK] = (part - estimate) ** 2 / z.shape[1]
        return out
