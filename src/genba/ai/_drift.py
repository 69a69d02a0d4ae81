"""Drift: has what a model sees moved away from what it was trained on?

For a version in service, its training rows (read again from the historian: the version keeps
its range) are the reference and the newest ``window_days`` of steady running rows the sample;
each compared by the **population stability index** (PSI) over ten bins cut at the reference's
deciles:

* each input signal, as the model sees it — the residual from its mode's line on the plan's
  conditions (:func:`~genba.ai._detector.fit_norm`), so a planned speed change is no drift;
* a detector's score;
* the share of rows in an operating mode the model never learnt (a new product), which has no
  residual at all.

PSI over :data:`PSI_DRIFT` (0.25, the usual "significant shift") on any input, over
:data:`SCORE_PSI_DRIFT` on the score, or more than
:data:`NEW_MODE_DRIFT` of the rows in unknown modes, is drift: the node records it
(``ai.drift``), lists it in ``problems``, and trains a challenger at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from genba.ai._detector import Detector, load_detector
from genba.ai._registry import ModelVersion
from genba.ai._rul import RulModel, read_lives
from genba.ai._train import frame, steady
from genba.clock import Clock
from genba.config import GenbaConfig, MachineSettings, ModelSettings, RulSettings
from genba.historian import Record, Store, TimeRange
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S

F64 = npt.NDArray[np.float64]
DRIFT_KIND = "ai.drift"
PSI_DRIFT = 0.25
SCORE_PSI_DRIFT = 1.0
"""A detector's score is a window statistic: hours of it vary more than its inputs do, so only
a far larger shift of its distribution is drift."""
NEW_MODE_DRIFT = 0.1
MIN_ROWS = 100
DAY_NS = 86_400 * NS_PER_S


def psi(reference: F64, sample: F64, bins: int = 10) -> float:
    """Population stability index of ``sample`` against ``reference`` (NaN left out), over
    ``bins`` bins at the reference's quantiles; 0 for the same distribution.

    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=5000)
    >>> round(psi(ref, rng.normal(size=5000)), 3) < 0.01
    True
    >>> round(psi(ref, rng.normal(1.0, 1.0, size=5000)), 2)  # a shift of one spread
    0.95
    """
    r = reference[~np.isnan(reference)]
    s = sample[~np.isnan(sample)]
    if not len(r) or not len(s):
        return float("nan")
    edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, r, "right"), minlength=len(edges) + 1) / len(r)
    q = np.bincount(np.searchsorted(edges, s, "right"), minlength=len(edges) + 1) / len(s)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass(frozen=True)
class DriftReport:
    name: str
    machine: str
    version: int
    at_ns: int
    window_from_ns: int
    psi: dict[str, float] = field(default_factory=dict)
    """Per input signal (and ``score`` for a detector)."""
    new_mode_share: float = 0.0
    rows: int = 0
    reason: str = ""
    """Why no verdict ("" when there is one)."""

    @property
    def drifted(self) -> list[str]:
        out = [k for k, v in self.psi.items() if v > (SCORE_PSI_DRIFT if k == "score" else PSI_DRIFT)]  # fmt: skip
        return out + (["new mode"] if self.new_mode_share > NEW_MODE_DRIFT else [])

    def text(self) -> str:
        if self.reason:
            return f"{self.name} on {self.machine}: no drift check ({self.reason})"
        if not self.drifted:
            return f"{self.name} on {self.machine}: no drift"
        parts = [f"{k} PSI {self.psi[k]:.2f}" for k in self.drifted if k in self.psi]
        if self.new_mode_share > NEW_MODE_DRIFT:
            parts.append(f"{self.new_mode_share:.0%} of rows in a mode it never learnt")
        return f"{self.name} v{self.version} on {self.machine} drifted: {', '.join(parts)} (PSI over {PSI_DRIFT} is a significant shift); retraining"  # fmt: skip


def check_drift(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    spec: ModelSettings | RulSettings,
    machine: MachineSettings,
    v: ModelVersion,
    now_ns: int,
    window_days: float = 1.0,
    kinds: dict[str, type[Detector]] | None = None,
) -> DriftReport:
    """``v``'s inputs (and score) over its training range against the last ``window_days``."""
    start = max(now_ns - int(window_days * DAY_NS), v.trained_to_ns)
    base = DriftReport(spec.name, machine.path, v.version, now_ns, start)
    if now_ns - start < window_days * DAY_NS / 2:
        return DriftReport(**asdict(base) | {"reason": "too little data since it was trained"})
    ref_span, cur_span = TimeRange(v.trained_from_ns, v.trained_to_ns), TimeRange(start, now_ns)
    got: list[tuple[F64, F64 | None]] = []
    if isinstance(spec, RulSettings):
        model = RulModel.load(v.data())
        cond = [c for c in str(model.params["conditions"]).split(",") if c]
        own = spec.model_copy(update={"tags": [s for s in model.signals if s not in cond], "conditions": cond})  # fmt: skip
        for span in (ref_span, cur_span):
            lives, *_ = read_lives(config, store, registry, clock, own, machine, span)
            z = model.residuals(lives)[lives.steady]
            got.append((z, None))
        names = [s for s in model.signals if s not in cond]
    else:
        assert kinds is not None
        det = load_detector(v.data(), kinds)
        names_in = [machine.signals.state_tag, *v.signals] + ([v.mode] if v.mode else [])
        for span in (ref_span, cur_span):
            f = frame(store, registry, machine.path, names_in, span, int(spec.every_s * NS_PER_S))
            ok = steady(f.t_ns, f.x[:, 0] == MachineState.RUNNING, spec.settle, spec.settle_max_s)
            x = f.x[ok, 1 : 1 + len(v.signals)]
            mode = f.x[ok, -1] if v.mode else None
            got.append((det.residuals(x, mode), det.score(x, mode).score))
        cond_cols = det.condition_columns()
        names = [s for s, c in zip(v.signals, cond_cols, strict=True) if not c]
        got = [(z[:, ~cond_cols], s) for z, s in got]
    (zr, sr), (zc, sc) = got
    if len(zc) < MIN_ROWS or len(zr) < MIN_ROWS:
        return DriftReport(**asdict(base) | {"rows": len(zc), "reason": f"{len(zc)} steady running rows since it was trained ({MIN_ROWS} needed)"})  # fmt: skip
    unknown = np.isnan(zc).all(axis=1)
    out = {n: psi(zr[:, j], zc[~unknown, j]) for j, n in enumerate(names)}
    if sr is not None and sc is not None:
        out["score"] = psi(sr, sc)
    return DriftReport(**asdict(base) | {"psi": {k: round(x, 4) for k, x in out.items() if x == x}, "new_mode_share": float(unknown.mean()), "rows": len(zc)})  # fmt: skip


def record_drift(store: Store, d: DriftReport) -> None:
    store.append_records([Record(DRIFT_KIND, d.at_ns, f"{d.name}/{d.machine}", asdict(d) | {"drifted": d.drifted})])  # fmt: skip
