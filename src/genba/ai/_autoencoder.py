"""``ae``: a small autoencoder on CPU — a neural network that squeezes each row of the
standardised signals through a narrow middle layer and rebuilds it; trained on normal rows,
it rebuilds normal ones well and an unfamiliar one badly. The score is the mean squared
rebuild error; each signal's contribution its own squared error.

Fitted by scikit-learn's ``MLPRegressor`` (``pip install 'genba[ml]'``; layers ``2s, s/2,
2s`` for ``s`` signals, tanh, Adam, at most ``epochs`` passes and about ``steps`` gradient
steps, ``seed``) and kept as its weight
matrices, scored by numpy: a saved model loads and scores without scikit-learn and without
unpickling anything. Nonlinear where PCA is linear, at the cost of a training that takes
seconds rather than milliseconds."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from genba.ai._detector import F64, Detector
from genba.ai._iforest import sklearn_needed


class AutoencoderDetector(Detector):
    fitted_by: ClassVar[tuple[str, ...]] = ("scikit-learn",)
    kind: ClassVar[str] = "ae"
    DEFAULTS: ClassVar[dict[str, Any]] = {"epochs": 200, "steps": 4000, "seed": 0}

    def _fit(self, x: F64) -> None:
        sklearn_needed(f"detector {self.kind!r}")
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        mean, sd = x.mean(axis=0), x.std(axis=0)
        z = (x - mean) / sd
        s = x.shape[1]
        net = MLPRegressor(
            hidden_layer_sizes=(2 * s, max(1, s // 2), 2 * s), activation="tanh",
            max_iter=self._epochs(len(x)), random_state=int(self.params["seed"]),
            tol=1e-6, n_iter_no_change=20,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed budget of passes
            net.fit(z, z)
        self.state = {"mean": mean, "sd": sd}
        for i, (w, b) in enumerate(zip(net.coefs_, net.intercepts_, strict=True)):
            self.state[f"w{i}"], self.state[f"b{i}"] = np.asarray(w), np.asarray(b)

    def _epochs(self, rows: int) -> int:
        """Passes over the data: ``epochs``, or fewer on long training data so that the
        gradient steps (a step per 200 rows) stay within ``steps`` — days of a machine train
        in seconds, SKAB's 400 rows get every pass."""
        per_epoch = -(-rows // 200)
        return max(1, min(int(self.params["epochs"]), -(-int(self.params["steps"]) // per_epoch)))

    def _raw(self, x: F64) -> F64:
        st = self.state
        z = (x - st["mean"]) / st["sd"]
        h = z
        layers = sum(k.startswith("w") for k in st)
        for i in range(layers):
            h = h @ st[f"w{i}"] + st[f"b{i}"]
            if i < layers - 1:
                h = np.tanh(h)
        return np.asarray((z - h) ** 2 / x.shape[1])
