"""``mad``: each signal against its own median, in robust standard deviations (the median
absolute deviation × 1.4826); the score is the mean of the squared robust z — each signal's
share its contribution. Univariate: it sees a signal leave its range, not a broken relation
between signals that each stay in theirs (see ``pca``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from genba.ai._detector import F64, Detector

MAD_TO_SD = 1.4826
"""The MAD of a normal distribution times this is its standard deviation."""


class MadDetector(Detector):
    kind: ClassVar[str] = "mad"
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def _fit(self, x: F64) -> None:
        med = np.median(x, axis=0)
        mad = np.median(np.abs(x - med), axis=0) * MAD_TO_SD
        sd = x.std(axis=0)
        # a signal that mostly sits on one value has MAD 0: fall back to its spread
        self.state = {"median": med, "scale": np.where(mad > 1e-12, mad, np.maximum(sd, 1e-12))}

    def _raw(self, x: F64) -> F64:
        z = (x - self.state["median"]) / self.state["scale"]
        return np.asarray(z**2 / x.shape[1])
