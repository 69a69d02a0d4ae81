"""Quality prediction: each machine's reject rate from its setpoints and process — the
surrogate a setpoint optimiser searches on — with an uncertainty that stays honest where the
plant has never run.

From the historian (:func:`quality_windows`): the machine's counters and process tags on a
one-minute grid, cut into windows of ``window_min`` minutes of running; a window's reject rate
is Δrejects / Δparts (a counter that went backwards — a reset — drops the window, counted);
its inputs are the means of the temperature and speed setpoints, the process temperature and
the speed.

The model (:class:`QualityModel`): a Gaussian process (scikit-learn, the ``ml`` extra) on the
standardised inputs, predicting the log-odds of the rate (smoothed by half a part), with a
constant × RBF kernel (one length scale per input) plus white noise, fitted by maximum
likelihood. Its predictive spread grows away from the windows it learnt from, so its
intervals widen where the plant has not been: the property the optimiser needs to not trust
it there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.ai._iforest import sklearn_needed
from genba.ai._train import frame
from genba.errors import ModelError
from genba.historian import Store, TimeRange
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S

F64 = npt.NDArray[np.float64]
INPUTS = ("temperature_sp", "speed_sp", "process_temperature", "speed")
MAX_FIT = 800
"""Windows the process is fitted on at most (a random subset): its cost grows as the cube."""
Z80 = 1.2816


@dataclass(frozen=True)
class Windows:
    """A machine's running windows: inputs (rows × :data:`INPUTS`), parts and rejects."""

    t_ns: npt.NDArray[np.int64]
    x: F64
    parts: F64
    rejects: F64
    dropped_resets: int

    @property
    def rate(self) -> F64:
        return np.asarray(self.rejects / np.maximum(self.parts, 1.0))


def quality_windows(
    store: Store,
    registry: TagRegistry,
    machine: str,
    span: TimeRange,
    *,
    window_min: float = 15.0,
    state_tag: str = "state",
    good_tag: str = "good_count",
    reject_tag: str = "reject_count",
    min_parts: int = 20,
) -> Windows:
    """The running windows of ``machine`` over ``span`` (module docstring)."""
    names = [state_tag, good_tag, reject_tag, *INPUTS]
    f = frame(store, registry, machine, names, span, 60 * NS_PER_S)
    n = int(window_min)
    k = len(f.t_ns) // n
    if k == 0:
        return Windows(np.zeros(0, dtype=np.int64), np.zeros((0, len(INPUTS))), np.zeros(0), np.zeros(0), 0)  # fmt: skip
    x = f.x[: k * n].reshape(k, n, -1)
    running = (x[:, :, 0] == MachineState.RUNNING).mean(axis=1)
    good = x[:, -1, 1] - x[:, 0, 1]
    bad = x[:, -1, 2] - x[:, 0, 2]
    reset = (good < 0) | (bad < 0)
    with np.errstate(invalid="ignore"):
        inputs = np.nanmean(x[:, :, 3:], axis=1)
    ok = ~reset & (running >= 0.8) & (good + bad >= min_parts) & ~np.isnan(inputs).any(axis=1)
    ok &= ~np.isnan(good) & ~np.isnan(bad)
    return Windows(f.t_ns[: k * n : n][ok], inputs[ok], (good + bad)[ok], bad[ok], int(reset.sum()))  # fmt: skip


class QualityModel:
    """The reject-rate surrogate of one machine (module docstring)."""

    fitted_by = ("scikit-learn",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.mean = np.zeros(len(INPUTS))
        self.scale = np.ones(len(INPUTS))
        self.gp: Any = None

    def fit(self, w: Windows) -> QualityModel:
        if len(w.t_ns) < 30:
            raise ModelError(
                f"too few running windows to learn the reject rate from ({len(w.t_ns)}, 30 "
                "needed): widen the training window"
            )
        sklearn_needed("the quality model")
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel

        self.mean = w.x.mean(axis=0)
        self.scale = np.where(w.x.std(axis=0) > 0, w.x.std(axis=0), 1.0)
        z = (w.x - self.mean) / self.scale
        y = np.log((w.rejects + 0.5) / (w.parts - w.rejects + 0.5))
        pick = np.random.default_rng(self.seed).permutation(len(z))[:MAX_FIT]
        kernel = (
            ConstantKernel(1.0) * RBF(length_scale=np.ones(len(INPUTS)), length_scale_bounds=(0.05, 1e3))
            + ConstantKernel(0.1, (1e-4, 1e2)) * DotProduct(1.0, (1e-2, 1e2)) ** 2
            + WhiteKernel(0.1)
        )  # fmt: skip
        self.gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=self.seed)
        with warnings.catch_warnings():
            # an input the rate does not depend on runs its length scale to the bound: that
            # is the fit switching it off, not a failure
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp.fit(z[pick], y[pick])
        return self

    def predict(self, x: F64) -> tuple[F64, F64, F64]:
        """The reject rate at inputs ``x`` with its 80 % interval (of the rate itself, the
        process' noise between windows left out)."""
        if self.gp is None:
            raise ModelError("the quality model is not trained: fit it first")
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        m, sd = self.gp.predict(z, return_std=True)
        noise = float(np.exp(self.gp.kernel_.k2.theta[0])) * float(self.gp._y_train_std) ** 2
        sd_f = np.sqrt(np.maximum(sd**2 - noise, 1e-12))  # the function's, not a window's

        def sig(v: F64) -> F64:
            return np.asarray(1.0 / (1.0 + np.exp(-v)))

        return sig(m), sig(m - Z80 * sd_f), sig(m + Z80 * sd_f)
