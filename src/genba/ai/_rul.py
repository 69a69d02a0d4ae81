"""Remaining useful life from the historian: running hours to a machine's next wear-out
failure, and the probability that it fails within a horizon.

What genba knows of a machine's lives comes from its history (:func:`lives`): its state
timeline (the KPIs' own, operator-given reasons included) says when it ran and when it was
down for a failure reason (``[[rul]] failure_reasons``, e.g. ``wear_out``); a failure ends a
part's life and its repair starts the next. On a grid of ``every_s``:

* **age**: running hours since the last repair (unknown before the first one in history);
* **RUL** (the label): running hours from the row to the next failure's start, capped at
  ``cap_h``; rows after the last failure have a label only once ``cap_h`` running hours have
  passed without one (the label is then the cap: right-censored, never guessed);
* **features**, per signal, on the steady running rows of the current life only (settling
  after stops as the detectors'): the residual from the signal's straight line on the plan's
  conditions per mode (:func:`~genba.ai._detector.fit_norm`, fitted on the training rows),
  its mean over the last ``short_s`` and ``long_s`` of running, their difference (the trend),
  and the long mean less the mean of the life's first ``long_s`` (this part's own baseline).

The model (one rule for every machine, :data:`DEFAULTS`, not tuned per machine): scikit-learn's
gradient boosting (the ``ml`` extra) — a regressor for the RUL, two quantile regressors for
its 10 % / 90 % interval and a classifier for "fails within ``horizon_h``" — fitted per machine
on its own history; saved with skops (no pickle: only the tree type of gradient boosting is
trusted on load).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from genba.ai._detector import apply_norm, fit_norm
from genba.ai._iforest import sklearn_needed
from genba.ai._registry import ModelVersion, save_version
from genba.ai._train import conditions_of, frame, mode_of, steady, tags_of
from genba.clock import Clock
from genba.config import GenbaConfig, LearntSettings, MachineSettings, RulSettings
from genba.errors import ModelError
from genba.historian import Store, TimeRange
from genba.kpi import Kpi
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

FORMAT = 1
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
"""The only type a saved model may hold beyond what skops trusts by default."""
DEFAULTS: dict[str, Any] = {
    "horizon_h": 24.0,
    "cap_h": 96.0,
    "short_s": 1800.0,
    "long_s": 14_400.0,
    "fit_every_s": 300.0,
    "smooth_s": 3600.0,
    "calibrate": 0.25,
    "max_iter": 150,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "conditions": "",
}
"""The model's settings; ``[[rul]]`` sets ``horizon_h`` and ``cap_h``, the rest is the rule:
``short_s`` / ``long_s`` the feature windows, ``fit_every_s`` the spacing of the training
rows, ``smooth_s`` the running time the failure probability is averaged over (row to row it
is as jumpy as the signals; an alarm on it would chatter), ``calibrate`` the share of the
newest training lives that widens the interval (conformalised quantile regression), and the
gradient boosting's own settings."""
FEATURES_PER_SIGNAL = ("short", "long", "trend", "vs_life_start")
WARNING_DEADBAND = 0.5
"""A failure warning clears when the probability falls under (1 − this) × alarm_probability:
a warning stays up until the repair rather than chatter on the horizon's edge."""


@dataclass(frozen=True)
class Lives:
    """A machine's history on a grid, cut into the lives of its wearing part."""

    t_ns: I64
    x: F64
    """Signals (rows × signals), the conditions among them."""
    mode: F64
    """The operating mode per row (0 where the model has none)."""
    running: Mask
    """The machine runs from the row to the next (its state timeline)."""
    steady: Mask
    """Running, past the settling time after a stop: rows that get features."""
    run_h: F64
    """Running hours from the first row up to each row (the row's own interval not in)."""
    failures_ns: I64
    """Start of each failure (down for a failure reason)."""
    repairs_ns: I64
    """End of each failure: a new part's life begins."""
    every_s: float
    end_ns: int
    """Where the history ends (exclusive): the failures and labels are known up to here."""

    @property
    def end_h(self) -> float:
        """Running hours at the end of the last row."""
        if not len(self.run_h):
            return 0.0
        return float(self.run_h[-1] + self.running[-1] * self.every_s / 3600.0)

    def run_h_at(self, t_ns: I64) -> F64:
        """Running hours at times ``t_ns`` (on the grid: those before the first row at or
        after each)."""
        k = np.searchsorted(self.t_ns, t_ns, "left")
        return np.asarray(np.r_[self.run_h, self.end_h][k])

    def age_h(self) -> F64:
        """Running hours since the last repair at each row; NaN before the first."""
        k = np.searchsorted(self.repairs_ns, self.t_ns, "right") - 1
        since = self.run_h_at(self.repairs_ns)
        return np.where(k >= 0, self.run_h - since[np.maximum(k, 0)], np.nan)

    def life(self) -> I64:
        """Which life each row is in: 0 before the first repair, k after the k-th."""
        return np.asarray(np.searchsorted(self.repairs_ns, self.t_ns, "right"), dtype=np.int64)

    def rul_h(self, cap_h: float) -> F64:
        """Running hours to the next failure's start, capped; NaN where not known (a row
        less than ``cap_h`` running hours before the end of history with no failure after)."""
        k = np.searchsorted(self.failures_ns, self.t_ns, "right")  # the next failure
        at = self.run_h_at(self.failures_ns)
        has = k < len(at)
        nxt = np.full(len(k), np.nan)
        nxt[has] = at[k[has]]
        end_h = self.end_h
        rul = np.minimum(nxt - self.run_h, cap_h)
        censored = np.isnan(nxt)
        return np.where(censored, np.where(end_h - self.run_h >= cap_h, cap_h, np.nan), rul)


def trailing_means(z: F64, segment: I64, window: int) -> F64:
    """Mean of each row and up to ``window - 1`` rows before it within its segment (a life):
    the window grows from each segment's start; NaN values are left out (all-NaN: NaN).

    >>> z = np.array([[1.0], [3.0], [5.0], [7.0], [100.0], [np.nan], [2.0]])
    >>> trailing_means(z, np.array([0, 0, 0, 0, 1, 1, 1]), 2)[:, 0].tolist()
    [1.0, 2.0, 4.0, 6.0, 100.0, 100.0, 2.0]
    """
    n = len(z)
    ok = ~np.isnan(z)
    cs = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(np.where(ok, z, 0.0), axis=0)])
    cn = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(ok, axis=0)])
    first = _segment_starts(segment)
    lo = np.maximum(np.arange(n) - window + 1, first)
    hi = np.arange(n) + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((cs[hi] - cs[lo]) / (cn[hi] - cn[lo]))


def _calibration_cut(life: I64, share: float) -> int | None:
    """The first life of the newest ``share`` of the rows (whole lives), if at least one
    life is left before it to fit on; None otherwise.

    >>> _calibration_cut(np.array([0, 0, 1, 1, 2, 2, 3, 3]), 0.25)
    3
    >>> _calibration_cut(np.array([5, 5, 5]), 0.25) is None
    True
    """
    if share <= 0 or not len(life):
        return None
    cut = int(np.quantile(life, 1.0 - share, method="higher"))
    return cut if (life < cut).any() and (life >= cut).any() else None


def _segment_starts(segment: I64) -> I64:
    """Index of the first row of each row's segment (segments are runs of equal values)."""
    n = len(segment)
    start = np.r_[True, segment[1:] != segment[:-1]] if n else np.zeros(0, dtype=bool)
    return np.asarray(np.maximum.accumulate(np.where(start, np.arange(n), 0)), dtype=np.int64)


def _life_start_means(z: F64, segment: I64, window: int) -> F64:
    """Mean of the first ``window`` rows of each row's segment (of those up to the row)."""
    n = len(z)
    ok = ~np.isnan(z)
    cs = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(np.where(ok, z, 0.0), axis=0)])
    cn = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(ok, axis=0)])
    first = _segment_starts(segment)
    hi = np.minimum(first + window, np.arange(n) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((cs[hi] - cs[first]) / (cn[hi] - cn[first]))


@dataclass(frozen=True)
class Estimates:
    """Per row: the RUL in running hours with its 80 % interval, and P(failure in horizon);
    NaN on rows that get no features (not running steadily)."""

    rul_h: F64
    low_h: F64
    high_h: F64
    p_fail: F64


class RulModel:
    """Remaining useful life of one machine (module docstring). ``kind``, ``params``,
    ``signals``, ``used``, ``fitted_by``, :meth:`save`: what the registry stores of a model."""

    kind: ClassVar[str] = "rul"
    fitted_by: ClassVar[tuple[str, ...]] = ("scikit-learn", "skops")

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ModelError(
                f"the RUL model has no setting {', '.join(unknown)}; "
                f"settings: {', '.join(sorted(DEFAULTS))}"
            )
        self.params: dict[str, Any] = DEFAULTS | params
        self.signals: list[str] = []
        self.used = np.zeros(0, dtype=bool)
        self.norm: dict[str, F64] = {}
        self.models: dict[str, Any] = {}
        self.widen_h = 0.0
        """How much the quantiles' interval is widened on each side (calibration), hours."""

    # -- features ---------------------------------------------------------------------
    def _cond(self) -> Mask:
        names = [c for c in str(self.params["conditions"]).split(",") if c]
        return np.array([s in names for s in self.signals], dtype=bool)

    def features(self, lives: Lives) -> F64:
        """The feature rows (module docstring); NaN rows where not steady."""
        z = self.residuals(lives)
        rows = np.flatnonzero(lives.steady)
        zs = z[rows]
        life = lives.life()[rows]
        short = max(1, round(self.params["short_s"] / lives.every_s))
        long = max(1, round(self.params["long_s"] / lives.every_s))
        m_s = trailing_means(zs, life, short)
        m_l = trailing_means(zs, life, long)
        base = _life_start_means(zs, life, long)
        per = np.stack([m_s, m_l, m_s - m_l, m_l - base], axis=-1).reshape(len(rows), -1)
        out = np.full((len(lives.t_ns), 1 + per.shape[1]), np.nan)
        out[rows, 0] = lives.age_h()[rows]
        out[rows, 1:] = per
        return out

    def residuals(self, lives: Lives) -> F64:
        """Each signal but the conditions as the model sees it: its residual from its mode's
        line on the conditions over its spread."""
        cond = self._cond()
        return apply_norm(self.norm, lives.x, lives.mode, cond)[:, ~cond]

    def feature_names(self) -> list[str]:
        sig = [s for s, c in zip(self.signals, self._cond(), strict=True) if not c]
        return ["age_h"] + [f"{s}_{f}" for s in sig for f in FEATURES_PER_SIGNAL]

    # -- fit / predict ------------------------------------------------------------------
    def fit(self, lives: Lives, signals: list[str], min_failures: int = 2) -> RulModel:
        """Learn from ``lives``; ``min_failures`` failures must be in it."""
        n_fail = len(lives.failures_ns)
        if n_fail < min_failures:
            raise ModelError(
                f"not enough failures to learn from ({n_fail} found, {min_failures} needed): "
                "the history holds too few failures with the [[rul]] failure_reasons; train "
                "again when more are recorded, widen train_days, or give the reasons of past "
                "stops (POST /api/downtime/{id}/reason)"
            )
        sklearn_needed("the RUL model")
        from sklearn.ensemble import HistGradientBoostingClassifier as Classifier
        from sklearn.ensemble import HistGradientBoostingRegressor as Regressor

        self.signals = list(signals)
        cond = self._cond()
        x_ok = lives.steady & ~np.isnan(lives.x).any(axis=1)
        self.norm = fit_norm(lives.x[x_ok], lives.mode[x_ok], cond, int(cond.sum()) + 30)
        self.used = ~cond
        f = self.features(lives)
        y = lives.rul_h(float(self.params["cap_h"]))
        stride = max(1, round(self.params["fit_every_s"] / lives.every_s))
        pick = np.zeros(len(y), dtype=bool)
        pick[::stride] = True
        rows = pick & lives.steady & ~np.isnan(y)
        if rows.sum() < 200:
            raise ModelError(
                f"too few labelled running rows to learn from ({int(rows.sum())}, 200 needed): "
                "widen train_days"
            )
        fx, fy = f[rows], y[rows]
        common = {k: self.params[k] for k in ("max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf")}  # fmt: skip
        # the interval: quantile regressors fitted on the older lives, widened by what they
        # miss on the newest (conformalised quantile regression: rows of a life are alike,
        # so the calibration rows are whole lives the quantiles never saw)
        life = lives.life()[rows]
        cut = _calibration_cut(life, float(self.params["calibrate"]))
        proper = life < cut if cut is not None else np.ones(len(fy), dtype=bool)
        low = Regressor(loss="quantile", quantile=0.1, **common, random_state=0).fit(fx[proper], fy[proper])  # fmt: skip
        high = Regressor(loss="quantile", quantile=0.9, **common, random_state=0).fit(fx[proper], fy[proper])  # fmt: skip
        self.widen_h = 0.0
        if cut is not None:
            cal = ~proper
            miss = np.maximum(low.predict(fx[cal]) - fy[cal], fy[cal] - high.predict(fx[cal]))
            n = len(miss)
            self.widen_h = float(np.quantile(miss, min(1.0, 0.8 * (n + 1) / n)))
        self.models = {
            "rul": Regressor(**common, random_state=0).fit(fx, fy),
            "low": low,
            "high": high,
        }
        soon = fy <= float(self.params["horizon_h"])
        if soon.all() or not soon.any():
            raise ModelError(
                f"every labelled row is {'inside' if soon.all() else 'outside'} the horizon of "
                f"{self.params['horizon_h']} running hours: nothing to tell apart; change horizon_h"
            )
        self.models["fail"] = Classifier(**common, random_state=0).fit(fx, soon)
        return self

    @property
    def fitted(self) -> bool:
        return bool(self.models)

    def predict(self, lives: Lives) -> Estimates:
        """Estimates for every row of ``lives`` (NaN where not steady)."""
        if not self.fitted:
            raise ModelError("the RUL model is not trained: fit it first")
        f = self.features(lives)
        n = len(f)
        out = {k: np.full(n, np.nan) for k in ("rul", "low", "high", "fail")}
        rows = lives.steady & ~np.isnan(f[:, 1:]).all(axis=1)
        if rows.any():
            fx = f[rows]
            cap = float(self.params["cap_h"])
            pred = np.column_stack([self.models[k].predict(fx) for k in ("low", "rul", "high")])
            pred[:, 0] -= self.widen_h
            pred[:, 2] += self.widen_h
            pred = np.clip(np.sort(pred, axis=1), 0.0, cap)
            out["low"][rows], out["rul"][rows], out["high"][rows] = pred.T
            p = self.models["fail"].predict_proba(fx)[:, 1:]
            smooth = max(1, round(self.params["smooth_s"] / lives.every_s))
            out["fail"][rows] = trailing_means(p, lives.life()[rows], smooth)[:, 0]
        return Estimates(out["rul"], out["low"], out["high"], out["fail"])

    # -- persistence --------------------------------------------------------------------
    def save(self) -> bytes:
        """A zip: ``header.json``, the normalisation (``norm.npz``) and each fitted
        estimator in skops' format (``<name>.skops``)."""
        if not self.fitted:
            raise ModelError("the RUL model is not trained: nothing to save")
        sio = _skops()

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            header = {"format": FORMAT, "kind": self.kind, "params": self.params, "signals": self.signals, "widen_h": self.widen_h}  # fmt: skip
            z.writestr("header.json", json.dumps(header))
            arr = io.BytesIO()
            np.savez(arr, used=self.used, **{f"norm_{k}": v for k, v in self.norm.items()})  # type: ignore[arg-type]
            z.writestr("norm.npz", arr.getvalue())
            for name, m in self.models.items():
                z.writestr(f"{name}.skops", sio.dumps(m))
        return buf.getvalue()

    @classmethod
    def load(cls, data: bytes) -> RulModel:
        """A model saved by :meth:`save`; refuses any type but gradient boosting's trees."""
        sklearn_needed("the RUL model", scoring=True)
        sio = _skops()

        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                header = json.loads(z.read("header.json"))
                with np.load(io.BytesIO(z.read("norm.npz")), allow_pickle=False) as a:
                    arrays = {k: np.array(a[k]) for k in a.files}
                blobs = {n.removesuffix(".skops"): z.read(n) for n in z.namelist() if n.endswith(".skops")}  # fmt: skip
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise ModelError(f"not a genba RUL model ({e}); train the model again") from e
        if header.get("format") != FORMAT or header.get("kind") != cls.kind:
            raise ModelError(f"not a RUL model of format {FORMAT}: train it again")
        m = cls(**header["params"])
        m.signals = list(header["signals"])
        m.widen_h = float(header["widen_h"])
        m.used = arrays.pop("used").astype(bool)
        m.norm = {k.removeprefix("norm_"): v for k, v in arrays.items()}
        for name, blob in blobs.items():
            untrusted = [t for t in sio.get_untrusted_types(data=blob) if t not in TRUSTED]
            if untrusted:
                raise ModelError(
                    f"the RUL model's {name} holds types genba does not load "
                    f"({', '.join(untrusted)}): train the model again"
                )
            m.models[name] = sio.loads(blob, trusted=TRUSTED)
        return m


def _skops() -> Any:
    try:
        import skops.io
    except ImportError:
        raise ModelError(
            "RUL models are saved with skops, which is not installed: pip install 'genba[ml]'"
        ) from None
    return skops.io


def hours_to_date(now_ns: int, running_h: float, running_share: float) -> int | None:
    """When ``running_h`` more running hours will have passed, at the machine's recent
    ``running_share`` of calendar time; None when it has not been running.

    >>> hours_to_date(0, 12.0, 0.5) // NS_PER_S // 3600
    24
    """
    if running_share <= 0 or np.isnan(running_h):
        return None
    return now_ns + int(running_h / running_share * 3600 * NS_PER_S)


# -- from the historian ---------------------------------------------------------------------
def failure_codes(config: GenbaConfig, spec: LearntSettings) -> list[int]:
    """The reason codes of ``spec.failure_reasons`` in the config's reason tree."""
    return [r.code for r in config.reasons() if r.name in spec.failure_reasons]


def timeline_of(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    spec: LearntSettings,
    machine: MachineSettings,
    span: TimeRange,
    t_ns: I64,
) -> tuple[Mask, I64, I64]:
    """From the machine's state timeline (the KPIs', operator-given reasons included): which
    of the times ``t_ns`` it runs, and the start and end of each failure with one of
    ``spec.failure_reasons`` (runs that touch merged: a reason given later, a restart
    attempt)."""
    kpi = Kpi(config, registry, store, clock, vouched_until=lambda: span.end_ns)
    tl = kpi.timeline(machine.path, str(span.start_ns // 1_000_000), str(span.end_ns // 1_000_000))  # fmt: skip
    runs = tl.machines[0]
    idx = np.searchsorted(runs.start_ns, t_ns, "right") - 1
    inside = (idx >= 0) & (t_ns < runs.end_ns[np.maximum(idx, 0)])
    running = inside & (runs.state[np.maximum(idx, 0)] == MachineState.RUNNING)
    failed = (runs.state == MachineState.DOWN) & np.isin(runs.reason_code, failure_codes(config, spec))  # fmt: skip
    starts, ends = runs.start_ns[failed], runs.end_ns[failed]
    if len(starts):
        new = np.r_[True, starts[1:] > ends[:-1]]
        ends = np.maximum.reduceat(ends, np.flatnonzero(new))
        starts = starts[new]
    return (
        np.asarray(running),
        np.asarray(starts, dtype=np.int64),
        np.asarray(np.minimum(ends, span.end_ns), dtype=np.int64),
    )


def read_lives(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    rul: RulSettings,
    machine: MachineSettings,
    span: TimeRange,
) -> tuple[Lives, list[str], list[str], str]:
    """``machine``'s history over ``span`` for ``rul``; with the signals read, the
    conditions among them and the mode tag ("" for none)."""
    names = tags_of(rul, machine, registry)
    conditions = conditions_of(rul, machine, registry)
    names += [c for c in conditions if c not in names]
    mode = mode_of(rul, machine, registry)
    every = int(rul.every_s * NS_PER_S)
    f = frame(store, registry, machine.path, names + ([mode] if mode else []), span, every)
    x, m = (f.x[:, :-1], f.x[:, -1]) if mode else (f.x, np.zeros(len(f.t_ns)))
    running, starts, ends = timeline_of(config, store, registry, clock, rul, machine, span, f.t_ns)
    lives = Lives(
        t_ns=f.t_ns,
        x=x,
        mode=np.nan_to_num(m, nan=-1.0),
        running=running,
        steady=steady(f.t_ns, running, rul.settle, rul.settle_max_s) & ~np.isnan(x).any(axis=1),
        run_h=(np.cumsum(running, dtype=np.float64) - running) * (rul.every_s / 3600.0),
        failures_ns=starts,
        repairs_ns=ends,
        every_s=rul.every_s,
        end_ns=span.end_ns,
    )
    return lives, names, conditions, mode


def train_rul(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    rul: RulSettings,
    machine: MachineSettings,
    end_ns: int,
    as_of_ns: int | None = None,
) -> ModelVersion:
    """Fit ``rul`` for ``machine`` on its history before ``end_ns``; store the version
    (``as_of_ns``: when, in the data's time, if not ``end_ns``)."""
    span = TimeRange(end_ns - int(rul.train_days * 86_400 * NS_PER_S), end_ns)
    lives, names, conditions, mode = read_lives(config, store, registry, clock, rul, machine, span)
    params = {"horizon_h": rul.horizon_h, "cap_h": rul.cap_h, "conditions": ",".join(conditions)}
    try:
        model = RulModel(**params).fit(lives, names, rul.min_failures)
    except ModelError as e:
        raise ModelError(f"{machine.path}: {e}") from None
    est = model.predict(lives)
    y = lives.rul_h(rul.cap_h)
    ok = ~np.isnan(est.rul_h) & ~np.isnan(y)
    metrics = {
        "failures": len(lives.failures_ns),
        "running_h": lives.end_h,
        "training_mae_h": float(np.abs(est.rul_h[ok] - y[ok]).mean()) if ok.any() else None,
        "features": model.feature_names(),
        "horizon_h": rul.horizon_h,
    }
    return save_version(
        store, rul.name, machine.path, model, trained_from_ns=span.start_ns,
        trained_to_ns=span.end_ns, rows=int(lives.steady.sum()), metrics=metrics,
        now_ns=clock.now_ns(), mode=mode, as_of_ns=as_of_ns,
    )  # fmt: skip


@dataclass(frozen=True)
class RulNow:
    """A machine's remaining useful life now, as the screen and the API show it."""

    machine: str
    model: str
    version: int
    at_ns: int
    """The newest steady running row the estimate is from."""
    rul_h: float
    low_h: float
    high_h: float
    p_fail: float
    horizon_h: float
    age_h: float | None
    running_share: float
    """Share of calendar time the machine ran over the last week: turns hours into a date."""
    plan_before_ns: int | None
    """When the interval's low end (10 %) of running hours will have passed."""
    alarm: bool
    last_failure_ns: int | None = None
    """The start of the newest failure in the history read (retraining looks at it)."""


def estimate_now(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    rul: RulSettings,
    machine: MachineSettings,
    model: RulModel,
    version: ModelVersion,
    now_ns: int,
) -> RulNow | None:
    """``machine``'s RUL at ``now_ns`` from the history before it (its current life and the
    week before, at most ``train_days``); None when it has not run steadily in that time."""
    back = int(min(rul.train_days, 7.0 + rul.cap_h / 24.0) * 86_400 * NS_PER_S)
    span = TimeRange(now_ns - back, now_ns)
    lives, *_ = read_lives(config, store, registry, clock, rul, machine, span)
    est = model.predict(lives)
    rows = np.flatnonzero(~np.isnan(est.rul_h))
    if not len(rows):
        return None
    i = int(rows[-1])
    week = lives.t_ns >= now_ns - 7 * 86_400 * NS_PER_S
    share = float(np.mean(lives.running[week])) if week.any() else 0.0
    age = lives.age_h()[i]
    return RulNow(
        machine=machine.path, model=rul.name, version=version.version,
        at_ns=int(lives.t_ns[i]), rul_h=float(est.rul_h[i]), low_h=float(est.low_h[i]),
        high_h=float(est.high_h[i]), p_fail=float(est.p_fail[i]), horizon_h=rul.horizon_h,
        age_h=None if np.isnan(age) else float(age), running_share=share,
        plan_before_ns=hours_to_date(int(lives.t_ns[i]), float(est.low_h[i]), share),
        alarm=bool(est.p_fail[i] > rul.alarm_probability),
        last_failure_ns=int(lives.failures_ns[-1]) if len(lives.failures_ns) else None,
    )  # fmt: skip
