"""Many fitted detectors scoring a row each in a few numpy calls: the node's tick, where
every watched machine gives one row every ``every_s``.

A :class:`Stack` holds detectors of one kind over the same number of signals (each machine
its own model). Their per-mode normalisation is laid out in one table (a row of
coefficients over ``[1, signals]`` per model and mode), gathered per row and applied with one
``einsum``; a kind that knows how (:meth:`Detector._stacked`, PCA) scores the rows in one
pass over padded arrays, the others row by row. Row ``i`` of a call is scored by detector
``which[i]``; what it gives equals that detector's own :meth:`Detector.contributions`
(``tests/ai/test_detectors.py`` holds it to that)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from genba.ai._detector import F64, Detector

I64 = npt.NDArray[np.int64]


class Stack:
    """Detectors of one kind and signal count (module docstring)."""

    def __init__(self, dets: list[Detector]) -> None:
        if not dets:
            raise ValueError("a stack needs at least one detector")
        s = len(dets[0].signals)
        if any(len(d.signals) != s or d.kind != dets[0].kind for d in dets):
            raise ValueError("a stack holds detectors of one kind over the same number of signals")
        self.dets = dets
        self.used = np.array([d.used for d in dets], dtype=bool)
        self.cond = np.zeros((len(dets), s), dtype=bool)
        self.table: list[dict[float, int]] = []
        coef, scale = [np.zeros((1, 1 + s, s))], [np.ones((1, s))]  # row 0: no normalisation
        for i, d in enumerate(dets):
            if not d.norm:
                self.table.append({})
                continue
            c = d._condition_columns()
            self.cond[i] = c
            k = len(d.norm["modes"])
            full = np.zeros((k, 1 + s, s))
            full[:, 0, :] = d.norm["coef"][:, 0, :]
            full[:, 1 + np.flatnonzero(c), :] = d.norm["coef"][:, 1:, :]
            base = sum(len(x) for x in coef)
            self.table.append({float(v): base + j for j, v in enumerate(d.norm["modes"])})
            coef.append(full)
            scale.append(d.norm["scale"])
        self.coef = np.concatenate(coef)
        self.scale = np.concatenate(scale)
        self.normalised = any(self.table)
        self.kind_raw: Callable[[F64, I64], F64] | None = type(dets[0])._stacked(dets)

    def contributions(self, x: F64, which: I64, mode: F64 | None = None) -> F64:
        """Each row's contributions by its detector (``which``); NaN rows: no score (a
        missing value, or a mode its detector never learnt)."""
        z = x
        if self.normalised:
            m = np.zeros(len(x)) if mode is None else mode
            rows = np.array(
                [
                    self.table[w].get(float(v), -1) if self.table[w] else 0
                    for w, v in zip(which.tolist(), m.tolist(), strict=True)
                ],
                dtype=np.int64,
            )
            a = np.column_stack([np.ones(len(x)), x])
            at = np.maximum(rows, 0)
            pred = np.einsum("ri,ris->rs", a, self.coef[at])
            z = np.where(self.cond[which], 0.0, (x - pred) / self.scale[at])
            z[rows < 0] = np.nan
        out = np.full(x.shape, np.nan)
        ok = ~np.isnan(z).any(axis=1)
        if not ok.any():
            return out
        if self.kind_raw is not None:
            out[ok] = self.kind_raw(z[ok], which[ok])
        else:
            for i in np.flatnonzero(ok):
                d = self.dets[which[i]]
                row = np.zeros(x.shape[1])
                row[d.used] = d._raw(z[i : i + 1, d.used])[0]
                out[i] = row
        return out
