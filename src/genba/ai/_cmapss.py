"""``genba ai evaluate cmapss``: remaining useful life on NASA's C-MAPSS turbofan sets, by the
usual protocol.

Each ``train_FDxxx`` unit runs to failure, so a row's RUL is its unit's last cycle minus its
cycle, capped at :data:`CAP` (125: early in life the RUL is not observable, only "healthy").
With ``test_FDxxx`` and ``RUL_FDxxx`` in the folder, a model trained on every training unit
predicts each test unit's RUL at its last observed cycle, scored by RMSE against the capped
truth (and the uncapped one beside it) and NASA's asymmetric score. With training files only,
it validates on held-out **units**: :data:`FOLDS` folds by unit; each held-out unit is cut at
:data:`CUTS` random cycles (as the test sets cut theirs), and its RUL at each cut predicted
from the cycles up to it.

The model (one rule for all four sets): each sensor normalised per operating condition (the
settings rounded to their six flight conditions in FD002/FD004), sensors constant in training
left out; per row, causal features over the unit's history — the value, means over the last
5, 10 and 30 cycles, slopes over the last 10 and 30, the cycle; a gradient-boosted regressor
(scikit-learn's ``HistGradientBoostingRegressor``, the ``ml`` extra) on the capped RUL, its
settings chosen among :data:`GRID` by cross-validation over the training units (nested inside
the held-out-unit validation).
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.ai._iforest import sklearn_needed
from genba.errors import ModelError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CAP = 125
FOLDS = 5
CUTS = 5
SUBSETS = ("FD001", "FD002", "FD003", "FD004")
MEANS = (5, 10, 30)
SLOPES = (10, 30)
SETTING_DECIMALS = (0, 2, 0)
"""Rounding that maps the three operational settings onto C-MAPSS's six flight conditions."""
PARAMS: dict[str, Any] = {"max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 50, "l2_regularization": 1.0}  # fmt: skip
"""The regressor's base settings; :data:`GRID` says what cross-validation chooses among."""
GRID: tuple[dict[str, Any], ...] = (
    {},
    {"max_leaf_nodes": 31, "min_samples_leaf": 100},
    {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 7},
)
"""The candidates over :data:`PARAMS`: deeper trees with bigger leaves, or shallower and
faster. One is chosen per training set by :data:`INNER`-fold cross-validation by unit (the
same cut protocol), nested inside the outer folds so that the outer estimate stays honest."""
INNER = 3


@dataclass(frozen=True)
class Units:
    """One C-MAPSS file: a row per unit and cycle."""

    unit: I64
    cycle: I64
    settings: F64
    sensors: F64


def read(path: Path) -> Units:
    """A C-MAPSS text file (space-separated; ``.gz`` too)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        a = np.loadtxt(f)
    if a.ndim != 2 or a.shape[1] < 26:
        raise ModelError(f"{path}: not a C-MAPSS file (26 columns: unit, cycle, 3 settings, 21 sensors)")  # fmt: skip
    return Units(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:5], a[:, 5:26])


def find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.txt", f"{stem}.txt.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def rul_of(u: Units) -> I64:
    """Cycles to each training row's failure (its unit's last cycle minus its cycle)."""
    last = np.zeros(u.unit.max() + 1, dtype=np.int64)
    np.maximum.at(last, u.unit, u.cycle)
    return np.asarray(last[u.unit] - u.cycle)


def nasa_score(pred: F64, true: F64) -> float:
    """NASA's asymmetric score (Saxena et al. 2008): late predictions cost more.

    >>> round(nasa_score(np.array([110.0, 90.0]), np.array([100.0, 100.0])), 4)
    2.8764
    """
    d = pred - true
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0), np.exp(d / 10.0)) - 1.0))


def rmse(pred: F64, true: F64) -> float:
    return float(np.sqrt(np.mean((pred - true) ** 2)))


class Features:
    """Per-condition normalisation learnt from training rows, and the causal features."""

    def __init__(self, train: Units) -> None:
        cond = self.condition(train.settings)
        self.conditions = np.unique(cond)
        self.mean = np.array([train.sensors[cond == c].mean(axis=0) for c in self.conditions])
        sd = np.array([train.sensors[cond == c].std(axis=0) for c in self.conditions])
        self.sd = np.where(sd > 1e-9, sd, 1.0)
        self.keep = (sd > 1e-6).any(axis=0)  # a sensor constant in every condition says nothing

    @staticmethod
    def condition(settings: F64) -> F64:
        r = np.column_stack([np.round(settings[:, i], d) for i, d in enumerate(SETTING_DECIMALS)])
        return np.asarray(r @ np.array([1e6, 1e3, 1.0]))

    def __call__(self, u: Units) -> F64:
        cond = self.condition(u.settings)
        k = np.clip(np.searchsorted(self.conditions, cond), 0, len(self.conditions) - 1)
        z = ((u.sensors - self.mean[k]) / self.sd[k])[:, self.keep]
        cols = [z, u.cycle[:, None].astype(np.float64)]
        cols += [_trailing(z, u.unit, w, "mean") for w in MEANS]
        cols += [_trailing(z, u.unit, w, "slope") for w in SLOPES]
        return np.column_stack(cols)


def _trailing(z: F64, unit: I64, w: int, what: str) -> F64:
    """Each row's mean (or least-squares slope per cycle) over its unit's last ``w`` rows,
    itself included (fewer at the unit's start); rows are in cycle order within a unit."""
    out = np.zeros_like(z)
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    ends = np.r_[starts[1:], len(unit)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        x = z[a:b]
        c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x]), axis=0)
        i = np.arange(1, b - a + 1)
        lo = np.maximum(i - w, 0)
        n = (i - lo)[:, None].astype(np.float64)
        mean = (c[i] - c[lo]) / n
        if what == "mean":
            out[a:b] = mean
            continue
        t = np.arange(b - a, dtype=np.float64)[:, None]
        ct = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), t * x]), axis=0)
        tt = np.r_[0.0, np.cumsum(np.arange(b - a, dtype=np.float64))]
        t2 = np.r_[0.0, np.cumsum(np.arange(b - a, dtype=np.float64) ** 2)]
        st, st2 = (tt[i] - tt[lo])[:, None], (t2[i] - t2[lo])[:, None]
        cov = (ct[i] - ct[lo]) - st * mean
        var = st2 - st**2 / n
        out[a:b] = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0)
    return out


def fit(train: Units, params: dict[str, Any] | None = None, seed: int = 0) -> tuple[Features, Any]:
    sklearn_needed("genba ai evaluate cmapss")
    from sklearn.ensemble import HistGradientBoostingRegressor

    feats = Features(train)
    y = np.minimum(rul_of(train), CAP).astype(np.float64)
    model = HistGradientBoostingRegressor(**(PARAMS | (params or {})), random_state=seed)
    model.fit(feats(train), y)
    return feats, model


def _take(u: Units, rows: npt.NDArray[np.bool_]) -> Units:
    return Units(u.unit[rows], u.cycle[rows], u.settings[rows], u.sensors[rows])


@dataclass
class SetResult:
    subset: str
    protocol: str
    """``test`` (the official test set) or ``held-out units`` (cross-validation)."""
    units: int
    predictions: int
    rmse: float
    rmse_uncapped: float
    nasa: float
    fold_rmse: list[float] = field(default_factory=list)
    chosen: list[dict[str, Any]] = field(default_factory=list)
    """The settings cross-validation chose over :data:`PARAMS` (per outer fold, or once)."""


def _folds(train: Units, n: int, seed: int) -> npt.NDArray[np.int64]:
    """A fold per row, whole units to a fold, at random."""
    units = np.unique(train.unit)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(units).tolist(), np.arange(len(units)) % n, strict=True))
    return np.array([fold_of[int(x)] for x in train.unit], dtype=np.int64)


def _cross_validate(train: Units, n: int, seed: int, params: dict[str, Any] | None, tune: bool) -> tuple[F64, F64, list[float], list[dict[str, Any]]]:  # fmt: skip
    """``n`` folds by unit; each held-out unit cut at :data:`CUTS` random cycles and predicted
    there from the cycles up to each cut. With ``tune``, the settings of each fold are chosen
    among :data:`GRID` by cross-validation inside its training units."""
    fold = _folds(train, n, seed)
    rng = np.random.default_rng(seed)
    preds, truth, per_fold, chosen = [], [], [], []
    rul = rul_of(train)
    for k in range(n):
        inner = _take(train, fold != k)
        use = choose(inner, seed) if tune else (params or {})
        chosen.append(use)
        feats, model = fit(inner, use, seed)
        held = _take(train, fold == k)
        x, r = feats(held), rul[fold == k]
        p_fold, t_fold = [], []
        for un in np.unique(held.unit).tolist():
            rows = np.flatnonzero(held.unit == un)
            cuts = rng.choice(rows, size=min(CUTS, len(rows)), replace=False)
            p_fold.append(np.clip(model.predict(x[cuts]), 0, None))
            t_fold.append(r[cuts].astype(np.float64))
        p, t = np.concatenate(p_fold), np.concatenate(t_fold)
        per_fold.append(rmse(p, np.minimum(t, CAP)))
        preds.append(p)
        truth.append(t)
    return np.concatenate(preds), np.concatenate(truth), per_fold, chosen


def choose(train: Units, seed: int = 0) -> dict[str, Any]:
    """The candidate of :data:`GRID` with the lowest :data:`INNER`-fold RMSE (capped) on
    ``train``'s units."""
    scores = []
    for cand in GRID:
        p, t, _, _ = _cross_validate(train, INNER, seed + 1, cand, tune=False)
        scores.append(rmse(p, np.minimum(t, CAP)))
    return dict(GRID[int(np.argmin(scores))])


def validate(train: Units, subset: str, params: dict[str, Any] | None = None, seed: int = 0, tune: bool = True) -> SetResult:  # fmt: skip
    """Cross-validation by unit: each held-out unit cut at random cycles, predicted there;
    the settings chosen inside each fold's training units (``tune``) or ``params``."""
    p, t, per_fold, chosen = _cross_validate(train, FOLDS, seed, params, tune)
    units = len(np.unique(train.unit))
    return SetResult(subset, "held-out units", units, len(p), rmse(p, np.minimum(t, CAP)),
                     rmse(p, t), nasa_score(p, np.minimum(t, CAP)), per_fold, chosen)  # fmt: skip


def score_test_set(train: Units, test: Units, true_rul: F64, subset: str, tune: bool = True) -> SetResult:  # fmt: skip
    """Trained on every training unit (the settings chosen by cross-validation over them);
    each test unit predicted at its last cycle."""
    use = choose(train) if tune else {}
    feats, model = fit(train, use)
    x = feats(test)
    last = np.r_[np.flatnonzero(test.unit[1:] != test.unit[:-1]), len(test.unit) - 1]
    p = np.clip(model.predict(x[last]), 0, None)
    if len(p) != len(true_rul):
        raise ModelError(f"{subset}: {len(p)} test units but {len(true_rul)} RUL values")
    return SetResult(subset, "test", len(p), len(p), rmse(p, np.minimum(true_rul, CAP)),
                     rmse(p, true_rul), nasa_score(p, np.minimum(true_rul, CAP)), [], [use])  # fmt: skip


def evaluate_cmapss(folder: Path, subsets: list[str] | None = None, tune: bool = True) -> list[SetResult]:  # fmt: skip
    """Every subset found in ``folder`` (or those named): the test protocol where its test
    files are there, cross-validation by unit otherwise."""
    out = []
    for s in subsets or list(SUBSETS):
        if s not in SUBSETS:
            raise ModelError(f"unknown C-MAPSS subset {s!r}; subsets: {', '.join(SUBSETS)}")
        tr = find(folder, f"train_{s}")
        if tr is None:
            if subsets:
                raise ModelError(f"{folder}: no train_{s}.txt(.gz); download NASA's C-MAPSS files there")  # fmt: skip
            continue
        train = read(tr)
        te, ru = find(folder, f"test_{s}"), find(folder, f"RUL_{s}")
        if te is not None and ru is not None:
            opener = gzip.open if ru.suffix == ".gz" else open
            with opener(ru, "rt") as f:
                true = np.atleast_1d(np.loadtxt(f)).astype(np.float64)
            out.append(score_test_set(train, read(te), true, s, tune))
        else:
            out.append(validate(train, s, tune=tune))
    if not out:
        raise ModelError(f"{folder}: no C-MAPSS training files (train_FD001.txt ... train_FD004.txt, or .gz)")  # fmt: skip
    return out


def to_json(results: list[SetResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]
