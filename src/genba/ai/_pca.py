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

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

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

    @classmethod
    def _stacked(cls, dets: list[Detector]) -> Callable[[F64, npt.NDArray[np.int64]], F64] | None:
        """Every model's state padded to all signals and the most components: an unused signal
        has mean 0, spread 1 and no loading (so it adds nothing), a missing component infinite
        variance."""
        stats = {d.params["statistic"] for d in dets}
        if len(stats) != 1:
            return None
        stat = stats.pop()
        m, s = len(dets), len(dets[0].signals)
        k = max(d.state["loadings"].shape[1] for d in dets)
        mean, sd = np.zeros((m, s)), np.ones((m, s))
        load, var = np.zeros((m, s, k)), np.full((m, k), np.inf)
        limits = np.ones((m, 2))
        used = np.array([d.used for d in dets], dtype=bool)
        for i, d in enumerate(dets):
            u, st = d.used, d.state
            mean[i, u], sd[i, u] = st["mean"], st["sd"]
            kd = st["loadings"].shape[1]
            load[i, np.flatnonzero(u), :kd] = st["loadings"]
            var[i, :kd] = st["variances"]
            limits[i] = np.maximum(st["limits"], 1e-12)

        def raw(z: F64, which: npt.NDArray[np.int64]) -> F64:
            p, keep = load[which], used[which]
            x = np.where(keep, (z - mean[which]) / sd[which], 0.0)
            t = np.einsum("rs,rsk->rk", x, p)
            t2 = x * np.einsum("rk,rsk->rs", t / var[which], p)
            if stat == "t2":
                return np.asarray(t2)
            q = np.where(keep, (x - np.einsum("rk,rsk->rs", t, p)) ** 2, 0.0)
            if stat == "q":
                return np.asarray(q)
            lim = limits[which]
            return np.asarray(t2 / lim[:, :1] + q / lim[:, 1:])

        return raw

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
