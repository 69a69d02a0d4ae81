"""How the SKAB rule of docs/ai.md is chosen, and how well that choice does on files it did
not see.

The procedure: a grid over the detector kind (``pca`` T², ``pca`` combined, ``mad``, ``knn``,
``ae``, ``iforest``) and the shared settings (``min_roughness``, ``margin``, ``q``,
``window``); keep the best pooled F1 among settings whose FAR is at most 20 %. A model depends
only on the kind and ``min_roughness`` (which signals it uses): each is fitted once per file
and its raw scores reused for the other settings, whose threshold and alarms are worked out
exactly as ``Detector.fit`` and ``Detector.score`` do (asserted for the first of each). Run on valve1 files 0–7 and scored on 8–15, and the
other way round (two-fold, by file): the held-out halves pooled estimate the procedure. Run on
all 16 files: the rule genba ships (``genba.ai._skab.RULE`` and the detectors' defaults).
Every file is fitted on its first 400 rows and scored on the rest (SKAB's protocol).

    python bench/skab_grid.py [--data ../shared/data/skab]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from genba.ai import Detector, make_detector
from genba.ai._detector import _trailing_mean
from genba.ai._skab import TRAIN_ROWS, find_files, outlier_counts, read_file

KINDS: list[tuple[str, dict[str, Any]]] = [
    ("pca", {}), ("pca", {"statistic": "combined"}), ("mad", {}), ("knn", {}), ("ae", {}),
    ("iforest", {}),
]  # fmt: skip
GRID: dict[str, list[float]] = {
    "min_roughness": [0.0, 0.2, 0.3, 0.4],
    "margin": [1.0, 1.25, 1.5, 2.0],
    "q": [0.95, 0.99, 1.0],
    "window": [10, 30, 60],
}
MAX_FAR = 0.20


def _finite(x: np.ndarray) -> np.ndarray:
    return np.asarray(x[~np.isnan(x)])


def figures(c: np.ndarray) -> tuple[float, float, float]:
    tp, fp, fn, tn = (int(v) for v in c)
    return tp / (tp + (fp + fn) / 2), fp / (fp + tn), fn / (fn + tp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "skab"
    ap.add_argument("--data", type=Path, default=default)
    args = ap.parse_args()
    if not (args.data / "valve1").is_dir():  # ./dev bench runs every script: say, go on
        print(f"SKAB's valve1 files are not under {args.data}; give --data")
        return
    files = [read_file(p, n) for p, n in find_files(args.data, ["valve1/*.csv"])]
    if len(files) != 16:
        raise SystemExit(f"{args.data}: expected valve1's 16 files, found {len(files)}")
    rules = [
        (kind, extra | dict(zip(GRID, values, strict=True)))
        for kind, extra in KINDS
        for values in itertools.product(*GRID.values())
    ]
    # confusion counts of every rule on every file (fit on the first 400 rows, score the rest)
    counts = np.zeros((len(rules), len(files), 4), dtype=np.int64)
    raws: dict[tuple[str, str, float, int], tuple[np.ndarray, np.ndarray]] = {}
    check: Detector | None = None
    for i, (kind, params) in enumerate(rules):
        for j, f in enumerate(files):
            key = (kind, str(sorted((k, v) for k, v in params.items() if k not in GRID)), params["min_roughness"], j)  # fmt: skip
            if key not in raws:  # the model: fitted once per kind, roughness and file
                det = make_detector(kind, **params).fit(f.x[:TRAIN_ROWS], f.signals)
                train = f.x[:TRAIN_ROWS]
                train = train[~np.isnan(train).any(axis=1)]
                raws[key] = (det._train_raw(train[:, det.used]).sum(axis=1), det.contributions(f.x).sum(axis=1))  # fmt: skip
                check = det  # the shortcut below must give what the detector gives
            train_raw, raw = raws[key]
            w = int(params["window"])
            th = params["margin"] * float(np.quantile(_finite(_trailing_mean(train_raw, w)), params["q"]))  # fmt: skip
            with np.errstate(invalid="ignore"):
                alarm = (_trailing_mean(raw, w) > th)[TRAIN_ROWS:]
            if check is not None:
                assert np.array_equal(alarm, make_detector(kind, **params).fit(f.x[:TRAIN_ROWS], f.signals).score(f.x).alarm[TRAIN_ROWS:])  # fmt: skip
                check = None
            assert f.anomaly is not None
            counts[i, j] = outlier_counts(f.anomaly[TRAIN_ROWS:], alarm)

    def pick(sel: slice) -> int:
        pooled = counts[:, sel].sum(axis=1)
        return max(range(len(rules)), key=lambda i: (figures(pooled[i])[1] <= MAX_FAR, figures(pooled[i])[0]))  # fmt: skip

    a, b, both = slice(0, 8), slice(8, 16), slice(0, 16)
    ia, ib, iall = pick(a), pick(b), pick(both)
    held_out = counts[ia, b].sum(axis=0) + counts[ib, a].sum(axis=0)

    def row(label: str, i: int, chosen: str, scored: str, c: np.ndarray) -> str:
        kind, params = rules[i]
        f1, far, mar = figures(c)
        return f"| {label}: `{kind}` {params} | {chosen} | {scored} | {f1:.3f} | {100 * far:.1f} | {100 * mar:.1f} |"  # fmt: skip

    print(f"{len(rules)} rules × {len(files)} files; best F1 with FAR ≤ {MAX_FAR:.0%}\n")
    print("| rule | chosen on | scored on | F1 | FAR % | MAR % |")
    print("|---|---|---|---:|---:|---:|")
    print(row("fold 1", ia, "0–7", "8–15", counts[ia, b].sum(axis=0)))
    print(row("fold 2", ib, "8–15", "0–7", counts[ib, a].sum(axis=0)))
    f1, far, mar = figures(held_out)
    print(f"| both held-out halves, pooled | | | {f1:.3f} | {100 * far:.1f} | {100 * mar:.1f} |")
    print(row("shipped", iall, "all 16", "all 16 (in sample)", counts[iall, both].sum(axis=0)))


if __name__ == "__main__":
    main()
