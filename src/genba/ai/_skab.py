"""The Skoltech Anomaly Benchmark (SKAB v0.9) by its own protocol.

Each CSV (``;``-separated, 1 Hz: ``datetime``, the signals, ``anomaly`` and ``changepoint``
labels) is one experiment: a detector is fitted on its first 400 rows and scores the rest
(the 400 rows before the first scored one fill the detector's window, as a detector running
on the stream would have them). Outlier detection counts every scored row; TP, FP, FN and TN
are pooled over all files, then F1 = TP / (TP + (FP + FN)/2), the false-alarm rate
FAR = FP / (FP + TN) and the missed-alarm rate MAR = FN / (FN + TP) — SKAB's figures.

The changepoint score is NAB's as SKAB computes it (the ``tsad`` package's ``chp_score``):
the changepoints a detector claims are where its alarm series changes (its first row counts
if it alarms); each true changepoint has a detection window of 30 s ending at it ("lefter");
the first claim in a window scores on a tanh curve from A_tp at its start to A_fp at its end,
a window without one scores A_fn, each claim outside every window A_fp; summed over files and
normalised to 100 × (score − null) / (perfect − null), for the three NAB profiles.

A file without labels (SKAB's ``anomaly-free.csv``) is scored for false alarms only and kept
out of the pooled figures.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from genba.ai._detector import Detector
from genba.errors import ModelError

TRAIN_ROWS = 400
"""SKAB's protocol: fit on the first 400 rows of each file."""
RULE_KIND = "knn"
RULE: dict[str, Any] = {"min_roughness": 0.3, "margin": 1.5, "q": 1.0}
"""The detector (:data:`RULE_KIND`) and settings over its defaults for SKAB, chosen by the
procedure of docs/ai.md on all 16 valve1 files (``bench/skab_grid.py``): a window of 400 rows
(under 7 minutes) sees the rig's temperatures drift, not vary, and they are left out. A node
trains on days of running time, where a slow signal (vibration, bearing temperature) is what
shows wear: there the default keeps every signal."""
LABELS = ("anomaly", "changepoint")
NAB_WINDOW_S = 30
"""Width of NAB's detection window in ``tsad`` (``numenta_time='30 sec'``), ending at the
changepoint (its default ``anomaly_window_destination='lefter'``)."""
NAB_PROFILES = {
    "standard": (1.0, -0.11, -1.0),
    "low_fp": (1.0, -0.22, -1.0),
    "low_fn": (1.0, -0.11, -2.0),
}
"""A_tp, A_fp, A_fn of NAB's application profiles."""

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FileResult:
    """One file: rows scored and its confusion counts (``labelled`` False: FAR only)."""

    name: str
    rows: int
    tp: int
    fp: int
    fn: int
    tn: int
    labelled: bool = True

    @property
    def f1(self) -> float | None:
        return _f1(self.tp, self.fp, self.fn) if self.labelled else None

    @property
    def far(self) -> float | None:
        return _div(self.fp, self.fp + self.tn)

    @property
    def mar(self) -> float | None:
        return _div(self.fn, self.fn + self.tp)


@dataclass(frozen=True)
class SkabReport:
    detector: str
    params: dict[str, Any]
    files: list[FileResult]
    nab: dict[str, float | None] = field(default_factory=dict)

    @property
    def pooled(self) -> FileResult:
        lab = [f for f in self.files if f.labelled]
        total = {k: sum(getattr(f, k) for f in lab) for k in ("rows", "tp", "fp", "fn", "tn")}
        return FileResult("pooled", **total)

    def to_json(self) -> dict[str, Any]:
        def row(f: FileResult) -> dict[str, Any]:
            return {
                "file": f.name, "rows": f.rows, "tp": f.tp, "fp": f.fp, "fn": f.fn, "tn": f.tn,
                "f1": f.f1, "far": f.far, "mar": f.mar, "labelled": f.labelled,
            }  # fmt: skip

        return {
            "detector": self.detector,
            "params": self.params,
            "pooled": row(self.pooled) | {"nab": self.nab},
            "files": [row(f) for f in self.files],
        }


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return _div(tp, tp + (fp + fn) / 2)


def outlier_counts(true: B, pred: B) -> tuple[int, int, int, int]:
    """TP, FP, FN, TN of point-wise labels.

    >>> outlier_counts(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    (1, 1, 1, 1)
    """
    return (
        int((true & pred).sum()),
        int((~true & pred).sum()),
        int((true & ~pred).sum()),
        int((~true & ~pred).sum()),
    )


def nab_score(
    t_s: I64, changepoints: B, alarm: B, profile: tuple[float, float, float]
) -> tuple[float, float, float]:
    """(score, null score, perfect score) of one file under one NAB profile (module doc).

    A claim 10 s into a 30 s window ending at the changepoint, standard profile (by hand:
    x = -π/2 + π·333/999, 0.555 · -tanh(x) / tanh(π/2) + 0.445 = 0.7358):

    >>> t = np.arange(100)
    >>> cp, alarm = t == 50, t >= 30
    >>> [round(x, 4) for x in nab_score(t, cp, alarm, NAB_PROFILES["standard"])]
    [0.7358, -1.0, 1.0]
    """
    a_tp, a_fp, a_fn = profile
    claims = t_s[alarm != np.r_[False, alarm[:-1]]]  # where the alarm series changes
    windows = [[float(c - NAB_WINDOW_S), float(c)] for c in t_s[changepoints]]
    for w0, w1 in itertools.pairwise(windows):  # overlapping windows: cut the right one
        if w0[1] >= w1[0]:
            w1[0] = w0[1]
    score = 0.0
    outside = np.ones(len(claims), dtype=bool)
    for left, right in windows:
        inside = (claims >= left) & (claims <= right)
        outside &= ~inside
        if inside.any():
            score += _scale(left, float(claims[inside][0]), right, a_tp, a_fp)
        else:
            score += a_fn
    score += a_fp * int(outside.sum())
    return score, len(windows) * a_fn, len(windows) * a_tp


def _scale(left: float, t: float, right: float, a_tp: float, a_fp: float) -> float:
    """tsad's improved NAB curve: A_tp at the window's start down to A_fp at its end."""
    x = np.linspace(-np.pi / 2, np.pi / 2, 1000)
    y = (a_tp - a_fp) / 2 * -np.tanh(x) / np.tanh(np.pi / 2) + (a_tp - a_fp) / 2 + a_fp
    event = min(int((t - left) / (right - left) * 1000), len(x) - 1) if right > left else 0
    return float(y[event])


@dataclass(frozen=True)
class _File:
    name: str
    t_s: I64
    x: npt.NDArray[np.float64]
    signals: list[str]
    anomaly: B | None
    changepoint: B | None


def read_file(path: Path, name: str) -> _File:
    """One SKAB CSV: times (s), the signal columns, and its labels where it has them."""
    try:
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=";"))
    except (pa.ArrowInvalid, OSError) as e:
        raise ModelError(f"{path}: not a SKAB CSV ({e})") from e
    if "datetime" not in table.column_names:
        raise ModelError(f"{path}: no 'datetime' column; SKAB files start with datetime;…")
    t = table["datetime"].cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()
    labels = {k: table[k].to_numpy().astype(float) > 0 for k in LABELS if k in table.column_names}
    signals = [c for c in table.column_names if c != "datetime" and c not in LABELS]
    x = np.column_stack(
        [table[c].cast(pa.float64()).to_numpy(zero_copy_only=False) for c in signals]
    )
    return _File(name, t, x, signals, labels.get("anomaly"), labels.get("changepoint"))


def find_files(data: Path, patterns: list[str] | None = None) -> list[tuple[Path, str]]:
    """The CSVs under ``data`` (a file or a folder, searched through), by name in natural
    order, kept if their path relative to ``data`` matches one of ``patterns``."""
    if data.is_file():
        return [(data, data.name)]
    if not data.is_dir():
        raise ModelError(f"{data}: no such folder; give the folder that holds SKAB's CSVs")
    found = []
    for p in data.rglob("*.csv"):
        rel = p.relative_to(data).as_posix()
        if not patterns or any(fnmatch.fnmatch(rel, pat) for pat in patterns):
            found.append((p, rel))
    if not found:
        raise ModelError(f"{data}: no SKAB CSV files (*.csv){' matching ' + ', '.join(patterns) if patterns else ''}")  # fmt: skip
    return sorted(found, key=lambda f: _natural(f[1]))


def _natural(name: str) -> list[Any]:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name)]


def evaluate_skab(
    data: Path,
    make: Callable[[], Detector],
    *,
    patterns: list[str] | None = None,
    train_rows: int = TRAIN_ROWS,
) -> SkabReport:
    """Fit a new detector from ``make`` on each file's first ``train_rows`` rows, score the
    rest, and pool the counts over the files (module docstring)."""
    results, nab = [], {k: np.zeros(3) for k in NAB_PROFILES}
    kind, params = "", {}
    for path, name in find_files(data, patterns):
        f = read_file(path, name)
        if len(f.x) <= train_rows:
            raise ModelError(
                f"{name}: {len(f.x)} rows, the protocol fits on the first {train_rows}"
            )
        det = make()
        kind, params = det.kind, det.params
        det.fit(f.x[:train_rows], f.signals)
        alarm = det.score(f.x).alarm[train_rows:]
        t = f.t_s[train_rows:]
        if f.anomaly is None:
            tp, fp, fn, tn = outlier_counts(np.zeros(len(alarm), dtype=bool), alarm)
            results.append(FileResult(name, len(alarm), tp, fp, fn, tn, labelled=False))
            continue
        results.append(FileResult(name, len(alarm), *outlier_counts(f.anomaly[train_rows:], alarm)))
        if f.changepoint is not None:
            for k, prof in NAB_PROFILES.items():
                nab[k] += nab_score(t, f.changepoint[train_rows:], alarm, prof)
    scores = {
        k: (round(float(100 * (s - null) / (perfect - null)), 2) if perfect != null else None)
        for k, (s, null, perfect) in nab.items()
    }
    return SkabReport(kind, params, results, scores)
