"""``pca``: principal component analysis of the standardised signals, the classic monitoring
statistics of multivariate statistical process control — Hotelling's T² (distance inside the
model's plane, in its own variances) and SPE/Q (squared distance off the plane: a broken
relation between signals).

``statistic`` picks the score: ``t2``, ``q``, or ``combined`` (each divided by its 99th
percentile over the training data, then added). Each signal's contribution is its part of the
score: for T², z_j · (P Λ⁻¹ Pᵀ z)_j (they add up to T²; one may be negative); for Q, the
squared residual e_j². Components are kept until they explain ``variance`` of the training
variance."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from genba.ai._detector import F64, Detector
from genba.errors import ModelError

STATISTICS = ("t2", "q", "combined")


class PcaDetector(Detector):
    kind: ClassVar[str] = "pca"
    DEFAULTS: ClassVar[dict[str, Any]] = {"variance": 0.8, "statistic": "t2"}

    def _fit(self, x: F64) -> None:
        stat = self.params["statistic"]
        if stat not in STATISTICS:
            raise ModelError(f"pca statistic {stat!r}: use one of {', '.join(STATISTICS)}")
        mean, sd = x.mean(axis=0), x.std(axis=0)
        z = (x - mean) / sd
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        var = s**2 / max(len(z) - 1, 1)
        share = np.cumsum(var) / var.sum()
        k = min(int(np.searchsorted(share, float(self.params["variance"]))) + 1, len(var))
        # a component with (numerically) no variance would divide by zero: keep the others
        k = max(1, min(k, int((var > 1e-12 * var[0]).sum())))
        self.state = {
            "mean": mean,
            "sd": sd,
            "loadings": np.ascontiguousarray(vt[:k].T),
            "variances": var[:k],
            "limits": np.ones(2),
        }
        if stat == "combined":
            t2, q = self._parts(x)
            self.state["limits"] = np.array(
                [np.quantile(t2.sum(axis=1), 0.99), np.quantile(q.sum(axis=1), 0.99)]
            )

    def _parts(self, x: F64) -> tuple[F64, F64]:
        st = self.state
        z = (x - st["mean"]) / st["sd"]
        p = st["loadings"]
        t2 = z * ((z @ p) / st["variances"] @ p.T)
        residual = z - (z @ p) @ p.T
        return np.asarray(t2), np.asarray(residual**2)

    def _raw(self, x: F64) -> F64:
        t2, q = self._parts(x)
        stat = self.params["statistic"]
        if stat == "t2":
            return t2
        if stat == "q":
            return q
        lim_t2, lim_q = self.state["limits"]
        return np.asarray(t2 / max(lim_t2, 1e-12) + q / max(lim_q, 1e-12))
