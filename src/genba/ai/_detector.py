"""The verbs every anomaly detector shares, columnar: fit on a frame of normal operation,
score a batch (a score per row, each signal's part of it), one threshold rule.

A detector sees rows of signals (one column each, the same columns in ``fit`` and ``score``)
and keeps only numpy arrays and JSON-able settings, so a saved model is a ``.npz`` read with
``allow_pickle=False`` and a JSON header: loading never runs code from the file (unlike
pickle, and without a dependency for it — skops and ONNX serve models whose state is a
scikit-learn or graph object; ours are a handful of arrays).

The pipeline, the same for every kind:

1. rows with a missing value (NaN: a gap, a stale mark) are left out of training, and get no
   score (NaN, never an alarm) when scored;
2. a signal constant over the training data says nothing about normal variation, and one
   that drifts through it (:func:`roughness` under ``min_roughness``) says nothing about
   where it will be next: each is left out of the model (``used`` False) and contributes 0;
3. the kind's raw score per row (:meth:`Detector._raw`, with each signal's contribution, which
   add up to the score);
4. a trailing mean over ``window`` rows (alarms on a sustained change, not on one noisy
   sample; causal, so scoring a stream gives what scoring the batch gives);
5. ``threshold = margin × quantile(training scores, q)``: learned from the training data alone.

Two settings make it fit a machine's operating modes (docs/ai.md, "Operating modes"):

* ``conditions`` (signal names, comma-separated: what the plan sets, such as ``speed``) and a
  ``mode`` per row (a product code, ...): each other signal is replaced by its residual from a
  straight-line fit on the conditions, fitted per mode, in units of that mode's residual
  spread — so a slower speed or another product is not an anomaly, only a signal that leaves
  where that speed and product put it. The conditions themselves are not scored; a row of a
  mode never seen in training gets no score.
* ``trim`` (rounds): training data from a plant holds wear too. Each round refits on the rows
  whose score stayed under the threshold, so the model learns the machine's usual state and
  not its worst hours.

``stat`` = ``median`` takes the trailing median instead of the mean: more than half the window
must be anomalous, so a transient shorter than half the window never alarms; ``ewma`` an
exponentially weighted mean (span ``window``): the newest rows weigh most.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from genba.errors import ModelError

F64 = npt.NDArray[np.float64]

FORMAT = 1
"""Version of the saved layout (the JSON header's ``format``)."""
STATS = ("mean", "median", "ewma")


@dataclass(frozen=True)
class Scores:
    """What a detector says of a batch: per row, the score (NaN: no score — a missing value
    in the row, or too few rows yet for the window) and each signal's contribution."""

    score: F64
    contributions: F64
    """(rows, signals); each row adds up to its score (before the window's mean)."""
    threshold: float

    @property
    def alarm(self) -> npt.NDArray[np.bool_]:
        """Rows over the threshold (a row with no score is never an alarm)."""
        with np.errstate(invalid="ignore"):
            return np.asarray(self.score > self.threshold)


class Detector(ABC):
    """Base of every detector kind; subclasses set ``kind``, ``DEFAULTS`` and the raw score."""

    kind: ClassVar[str]
    streaming: ClassVar[bool] = False
    """Whether it keeps learning from the rows it scores (:meth:`learn`)."""
    fitted_by: ClassVar[tuple[str, ...]] = ()
    """Distributions beyond numpy that fit it (their versions go into the registry)."""
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    COMMON: ClassVar[dict[str, Any]] = {
        "window": 60,
        "q": 0.95,
        "margin": 1.25,
        "min_rows": 50,
        "min_roughness": 0.0,
        "stat": "mean",
        "trim": 0,
        "conditions": "",
    }
    """Settings of the shared pipeline (module docstring): rows in the trailing window, the
    training quantile and the margin of the threshold, the fewest training rows, the
    roughness below which a signal counts as drifting (:func:`roughness`), the window's
    statistic (``mean`` or ``median``), the trimming rounds, and the condition signals."""

    def __init__(self, **params: Any) -> None:
        known = self.COMMON | self.DEFAULTS
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ModelError(
                f"detector {self.kind!r} has no setting {', '.join(unknown)}; "
                f"its settings are {', '.join(sorted(known))}"
            )
        self.params: dict[str, Any] = known | params
        self.signals: list[str] = []
        self.used: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.state: dict[str, F64] = {}
        self.norm: dict[str, F64] = {}
        """Per-mode normalisation (empty: none): ``modes``, ``coef`` (modes × 1+conditions ×
        signals) and ``scale`` (modes × signals)."""
        self.threshold = float("nan")
        if self.params["stat"] not in STATS:
            raise ModelError(f"stat {self.params['stat']!r}: use one of {', '.join(STATS)}")

    # -- to implement ------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, x: F64) -> None:
        """Learn from ``x`` (rows × used signals, no NaN) into ``self.state``."""

    @abstractmethod
    def _raw(self, x: F64) -> F64:
        """Contributions (rows × used signals) of rows without NaN; their sum is the score."""

    def learn(self, x: F64, mode: F64 | None = None) -> None:  # noqa: B027 - optional hook
        """A streaming kind adds rows to what it learnt; the others learn only in versions."""

    @classmethod
    def _stacked(cls, dets: list[Detector]) -> Callable[[F64, npt.NDArray[np.int64]], F64] | None:
        """For :class:`genba.ai._stack.Stack`: a function giving the contributions (rows × all
        signals, unused ones 0) of normalised rows, row ``i`` by ``dets[which[i]]``, in a few
        array calls; None: the stack scores row by row."""
        return None

    def _train_raw(self, x: F64) -> F64:
        """:meth:`_raw` of the training rows, for the threshold; a kind that remembers its
        training rows scores each without itself (else every training score is ~0)."""
        return self._raw(x)

    # -- the shared pipeline -----------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return bool(self.state)

    def fit(self, x: F64, signals: list[str] | None = None, mode: F64 | None = None) -> Detector:
        """Learn normal operation from ``x`` (rows × signals; ``mode``: a code per row, when
        normal differs by mode) and set the threshold."""
        x = _frame(x, "training data")
        names = signals if signals is not None else [f"signal {i}" for i in range(x.shape[1])]
        if len(names) != x.shape[1]:
            raise ModelError(f"{len(names)} signal names for {x.shape[1]} columns")
        m = _modes(mode, len(x))
        ok = ~np.isnan(x).any(axis=1) & ~np.isnan(m)
        complete, m = x[ok], m[ok]
        need = int(self.params["min_rows"])
        if len(complete) < need:
            raise ModelError(
                f"too little training data: {len(complete)} complete rows (of {len(x)}), "
                f"detector {self.kind!r} needs at least {need}; widen the training window "
                "or fill the gaps of its signals"
            )
        self.signals = list(names)
        cond = self._condition_columns()
        normalise = mode is not None or bool(cond.any())
        keep = np.ones(len(complete), dtype=bool)
        for _ in range(int(self.params["trim"]) + 1):
            z = self._fit_norm(complete[keep], m[keep], cond) if normalise else complete[keep]
            learnt = np.asarray(~np.isnan(z).any(axis=1))  # not: a mode with too few rows
            train = self._fit_rows(z[learnt], names)
            still = learnt.copy()
            still[learnt] = ~(train > self.threshold)  # NaN (the window's first rows) stays
            if still.all():
                break
            kept = np.flatnonzero(keep)
            keep = np.zeros(len(complete), dtype=bool)
            keep[kept[still]] = True
        return self

    def _fit_rows(self, z: F64, names: list[str]) -> F64:
        """Fit the kind on normalised rows; the training rows' window scores."""
        spread = z.max(axis=0) - z.min(axis=0)
        varies = spread > 1e-9 * np.maximum(1.0, np.abs(z).max(axis=0))
        if not varies.any():
            raise ModelError(
                f"every signal is constant over the training data ({', '.join(names)}); "
                "train on a window where the machine runs"
            )
        used = varies & (roughness(z) >= float(self.params["min_roughness"]))
        if not used.any():
            raise ModelError(
                f"every signal drifts over the training data ({', '.join(names)}): none "
                "varies around a level; train on a longer window, or lower min_roughness"
            )
        self.used = used
        self.state = {}
        self._fit(z[:, used])
        raw = self._train_raw(z[:, used]).sum(axis=1)
        train = self._window(raw)
        scored = train[~np.isnan(train)]
        self.threshold = float(self.params["margin"]) * float(np.quantile(scored, self.params["q"]))
        return train

    def _condition_columns(self) -> npt.NDArray[np.bool_]:
        names = [c.strip() for c in str(self.params["conditions"]).split(",") if c.strip()]
        unknown = [c for c in names if c not in self.signals]
        if unknown:
            raise ModelError(
                f"conditions {', '.join(unknown)} are not among the signals "
                f"({', '.join(self.signals)}); name signals the model reads"
            )
        return np.array([s in names for s in self.signals], dtype=bool)

    def _fit_norm(self, x: F64, mode: F64, cond: npt.NDArray[np.bool_]) -> F64:
        """Per mode, each signal's straight line on the conditions and its residual spread;
        the rows normalised (conditions 0: they are not scored)."""
        need = max(int(self.params["min_rows"]), int(cond.sum()) + 2)
        self.norm = fit_norm(x, mode, cond, need)
        return self._normalise(x, mode)

    def residuals(self, x: F64, mode: F64 | None = None) -> F64:
        """The rows as the model sees them: each signal's residual from its mode's line on
        the conditions over its spread (NaN in a mode never learnt; the rows as they are when
        the model normalises nothing)."""
        return self._normalise(_frame(x, "rows"), _modes(mode, len(x)))

    def condition_columns(self) -> npt.NDArray[np.bool_]:
        """Which signals are conditions (the plan sets them; they are not scored)."""
        return self._condition_columns()

    def _normalise(self, x: F64, mode: F64) -> F64:
        """Rows as residuals of their mode (NaN for a mode not learned); conditions 0."""
        if not self.norm:
            return x
        return apply_norm(self.norm, x, mode, self._condition_columns())

    def _window(self, raw: F64) -> F64:
        """The trailing statistic of raw row scores (the score)."""
        window = int(self.params["window"])
        if self.params["stat"] == "median":
            return _trailing_median(raw, window)
        if self.params["stat"] == "ewma":
            return _trailing_ewma(raw, window)
        return _trailing_mean(raw, window)

    def window_scores(self, raw: F64) -> F64:
        """The score of each row of ``raw`` (rows × ``window`` raw scores, oldest first): what
        a stream that keeps each machine's last ``window`` raw scores publishes."""
        if self.params["stat"] == "median":
            return np.asarray(np.median(raw, axis=1))
        if self.params["stat"] == "ewma":
            return np.asarray(raw @ ewma_weights(raw.shape[1]))
        return np.asarray(raw.mean(axis=1))

    def score(self, x: F64, mode: F64 | None = None) -> Scores:
        """Score each row of ``x`` (the signals of :meth:`fit`, in its order; ``mode`` as in
        training)."""
        contributions = self.contributions(x, mode)
        raw = contributions.sum(axis=1)  # NaN where a value is missing
        return Scores(self._window(raw), contributions, self.threshold)

    def contributions(self, x: F64, mode: F64 | None = None) -> F64:
        """Each signal's part of each row's score before the window's mean (NaN rows stay
        NaN): what a stream scorer keeps a window of (see ``genba.node._ai``)."""
        if not self.fitted:
            raise ModelError(f"detector {self.kind!r} is not trained: fit it first")
        x = _frame(x, "data to score")
        if x.shape[1] != len(self.signals):
            raise ModelError(
                f"{x.shape[1]} columns to score, the model was trained on {len(self.signals)} "
                f"({', '.join(self.signals)})"
            )
        if self.norm:
            if mode is None and self.norm["modes"].tolist() != [0.0]:
                raise ModelError(
                    f"the model learnt normal per mode ({self.norm['modes'].tolist()}): "
                    "give each row's mode"
                )
            x = self._normalise(x, _modes(mode, len(x)))
        ok = ~np.isnan(x).any(axis=1)
        out = np.full(x.shape, np.nan)
        if ok.all():
            out[:] = 0.0
            out[:, self.used] = self._raw(x[:, self.used])
        elif ok.any():
            part = np.zeros((int(ok.sum()), x.shape[1]))
            part[:, self.used] = self._raw(x[ok][:, self.used])
            out[ok] = part
        return out

    # -- saving ------------------------------------------------------------------------------
    def save(self) -> bytes:
        """The model as bytes: arrays in an ``.npz`` (no pickles) with a JSON header."""
        if not self.fitted:
            raise ModelError(f"detector {self.kind!r} is not trained: nothing to save")
        header = {
            "format": FORMAT,
            "kind": self.kind,
            "params": self.params,
            "signals": self.signals,
            "threshold": self.threshold,
        }
        buf = io.BytesIO()
        arrays = {f"state_{k}": v for k, v in self.state.items()}
        arrays |= {f"norm_{k}": v for k, v in self.norm.items()}
        np.savez(buf, header=np.array(json.dumps(header)), used=self.used, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()


def load_detector(data: bytes, kinds: dict[str, type[Detector]]) -> Detector:
    """A detector saved by :meth:`Detector.save`; never unpickles (``allow_pickle=False``)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            arrays = {k: np.array(z[k]) for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"not a genba model file ({e}); train the model again") from e
    if header.get("format") != FORMAT:
        raise ModelError(f"model format {header.get('format')} is not {FORMAT}: train it again")
    kind = header.get("kind")
    if kind not in kinds:
        raise ModelError(f"unknown detector kind {kind!r}; known: {', '.join(sorted(kinds))}")
    det = kinds[kind](**header["params"])
    det.signals, det.threshold = list(header["signals"]), float(header["threshold"])
    det.used = arrays.pop("used").astype(bool)
    det.state = {k.removeprefix("state_"): v for k, v in arrays.items() if k.startswith("state_")}
    det.norm = {k.removeprefix("norm_"): v for k, v in arrays.items() if k.startswith("norm_")}
    return det


def fit_norm(x: F64, mode: F64, cond: npt.NDArray[np.bool_], need: int) -> dict[str, F64]:
    """Per mode (a code per row), each column's least-squares line on the condition columns
    ``cond`` and the spread of its residual; a mode with fewer than ``need`` rows is not
    learnt (its rows normalise to NaN).

    >>> x = np.array([[1.0, 12.0], [2.0, 22.5], [3.0, 31.5], [4.0, 42.0]])
    >>> n = fit_norm(x, np.zeros(4), np.array([True, False]), 3)
    >>> n["coef"][0].round(2).tolist()  # intercepts, then slopes: column 1 = 2.25 + 9.9 × column 0
    [[0.0, 2.25], [1.0, 9.9]]
    """
    values, coef, scale = [], [], []
    for v in np.unique(mode):
        r = x[mode == v]
        if len(r) < need:
            continue  # too few rows to learn this mode: its rows get no score
        a = np.column_stack([np.ones(len(r)), r[:, cond]])
        b, *_ = np.linalg.lstsq(a, r, rcond=None)
        sd = (r - a @ b).std(axis=0)
        values.append(v)
        coef.append(b)
        scale.append(np.where(sd > 0, sd, 1.0))
    if not values:
        raise ModelError(
            f"no mode has {need} training rows: train on a longer window, or on fewer modes"
        )
    return {"modes": np.array(values), "coef": np.array(coef), "scale": np.array(scale)}


def apply_norm(norm: dict[str, F64], x: F64, mode: F64, cond: npt.NDArray[np.bool_]) -> F64:
    """Rows as residuals of their mode's lines over the residual spread (:func:`fit_norm`);
    NaN for a mode not learnt; the condition columns 0."""
    k = np.searchsorted(norm["modes"], mode)
    k = np.minimum(k, len(norm["modes"]) - 1)
    known = norm["modes"][k] == mode
    a = np.column_stack([np.ones(len(x)), x[:, cond]])
    pred = np.einsum("ij,ijk->ik", a, norm["coef"][k])
    z = (x - pred) / norm["scale"][k]
    z[:, cond] = 0.0
    z[~known] = np.nan
    return np.asarray(z)


def roughness(x: F64) -> F64:
    """Von Neumann's ratio of each column (rows in time order): the mean squared step over
    twice the variance — about 1 for noise around a level, near 0 for a signal that drifts
    or wanders slowly (a temperature warming up), whose training window says little about
    where it will be an hour later.

    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([rng.normal(0, 1, 400), np.cumsum(rng.normal(0, 1, 400))])
    >>> roughness(x).round(2).tolist()
    [1.01, 0.03]
    """
    var = x.var(axis=0)
    steps = (np.diff(x, axis=0) ** 2).mean(axis=0)
    return np.asarray(np.where(var > 0, steps / (2 * np.where(var > 0, var, 1.0)), 0.0))


def _frame(x: Any, what: str) -> F64:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ModelError(f"{what} must be rows × signals (2-D), got shape {a.shape}")
    return a


def _modes(mode: F64 | None, n: int) -> F64:
    if mode is None:
        return np.zeros(n)
    m = np.asarray(mode, dtype=np.float64).ravel()
    if len(m) != n:
        raise ModelError(f"{len(m)} modes for {n} rows: give one mode per row")
    return m


def _trailing_median(x: F64, window: int) -> F64:
    """Median of each row and the ``window - 1`` before it; NaN as :func:`_trailing_mean`.

    >>> _trailing_median(np.array([1.0, 9, 2, np.nan, 5, 6, 7]), 3).tolist()
    [nan, nan, 2.0, nan, nan, nan, 6.0]
    """
    out = np.full(len(x), np.nan)
    if window <= 1:
        return x.copy()
    if len(x) < window:
        return out
    view = np.lib.stride_tricks.sliding_window_view(x, window)
    step = max(1, 4_000_000 // window)  # a few tens of MB at a time
    for a in range(0, len(view), step):
        out[window - 1 + a : window - 1 + a + len(view[a : a + step])] = np.median(view[a : a + step], axis=1)  # fmt: skip
    return out


def ewma_weights(window: int) -> F64:
    """Weights of the exponentially weighted mean over ``window`` rows, oldest first: span
    ``window`` (α = 2 / (window + 1)), cut at the window and normalised to add up to 1.

    >>> ewma_weights(3).round(3).tolist()
    [0.143, 0.286, 0.571]
    """
    alpha = 2.0 / (window + 1)
    w = (1 - alpha) ** np.arange(window - 1, -1, -1)
    return np.asarray(w / w.sum())


def _trailing_ewma(x: F64, window: int) -> F64:
    """The exponentially weighted mean of each row and the ``window - 1`` before it (the
    newest weighs most); NaN as :func:`_trailing_mean`.

    >>> _trailing_ewma(np.array([1.0, 1, 4, np.nan, 2, 2, 2]), 3).round(3).tolist()
    [nan, nan, 2.714, nan, nan, nan, 2.0]
    """
    out = np.full(len(x), np.nan)
    if window <= 1:
        return x.copy()
    if len(x) < window:
        return out
    out[window - 1 :] = np.convolve(x, ewma_weights(window)[::-1], mode="valid")
    return out


def _trailing_mean(x: F64, window: int) -> F64:
    """Mean of each row and the ``window - 1`` before it; NaN until ``window`` rows, and where
    any of them is NaN (a gap gives no score, not a stale one).

    >>> _trailing_mean(np.array([1.0, 2, 3, np.nan, 5, 6]), 2).tolist()
    [nan, 1.5, 2.5, nan, nan, 5.5]
    """
    if window <= 1:
        return x.copy()
    bad = np.isnan(x)
    c = np.concatenate([[0.0], np.cumsum(np.where(bad, 0.0, x))])
    nb = np.concatenate([[0], np.cumsum(bad)])
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        i = np.arange(window, len(x) + 1)
        mean = (c[i] - c[i - window]) / window
        out[window - 1 :] = np.where(nb[i] - nb[i - window] > 0, np.nan, mean)
    return out
