"""Training that only gets better: each new version is a challenger, judged against the
champion in service on the newest data neither saw (:mod:`genba.ai._champion`), by the
model kind's own loss:

* **RUL** (:func:`rul_losses`): the absolute error of the remaining running hours on the
  labelled steady rows of the unseen days (the truth from the failures the historian recorded
  since) within ``2 × horizon_h`` of a failure — where maintenance is planned; earlier in a
  life no model can tell much and every one is as far off — grouped by the part's life and
  :data:`BLOCK_H` hours of its remaining life;
* **detectors** (:func:`detector_losses`): a detector is judged on what it should and should
  not alarm on — a *false alarm* on each steady row of the unseen days as they are, a *miss*
  on the rows within ``warning_h`` running hours before a failure the historian recorded
  (``failure_reasons``), and a *miss* on the normal rows with one signal at a time shifted by
  :data:`INJECT_SPREADS` times its robust spread there (a step fault of known size, so that
  days without a failure still judge recall). False alarms weigh half, misses the other half
  (real ones a quarter when there are any). The last ``warning_h`` running hours of the days
  may precede a failure not recorded yet: they count neither way. Rows are grouped grouped by blocks of :data:`DETECTOR_BLOCK_H` hour. A row one model
  cannot score (a mode it never learnt: a new product) is no alarm for it — so a miss of every
  fault there. A detector that alarms on normal rows (a wrong tag,
  a plant that changed since it was trained) loses on the first half; one that never alarms
  loses on the second.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genba.ai._champion import (
    F64,
    I64,
    Decision,
    first_decision,
    in_service,
    judge,
    record,
)
from genba.ai._detector import Detector, load_detector
from genba.ai._registry import ModelVersion
from genba.ai._rul import RulModel, read_lives, timeline_of, train_rul
from genba.ai._train import frame, steady, train
from genba.clock import Clock
from genba.config import GenbaConfig, MachineSettings, ModelSettings, RulSettings
from genba.errors import ModelError
from genba.historian import Store, TimeRange
from genba.tags import TagRegistry
from genba.types import NS_PER_S

DAY_NS = 86_400 * NS_PER_S
INJECT_SPREADS = 6.0
BLOCK_H = 4
"""RUL rows are grouped by life and blocks of this many hours of remaining life."""
DETECTOR_BLOCK_H = 1
"""Detector rows are grouped by blocks of this many hours."""
MIN_ROWS = 50


def challenge(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    spec: ModelSettings | RulSettings,
    machine: MachineSettings,
    now_ns: int,
    kinds: dict[str, type[Detector]] | None = None,
) -> tuple[ModelVersion, Decision]:
    """Train a challenger for ``machine`` and decide whether it replaces the champion; both
    the version and the decision are stored. ``kinds``: the detector kinds (a ``[[model]]``)."""
    champion = in_service(store, spec.name, machine.path)
    holdout = int(spec.holdout_days * DAY_NS)
    end = now_ns if champion is None else now_ns - holdout
    if champion is not None and end <= champion.trained_to_ns:
        raise ModelError(
            f"no challenger yet: the version in service was trained on the data up to "
            f"{(now_ns - champion.trained_to_ns) / DAY_NS:.1f} days ago, and a challenger "
            f"must be trained on newer data than it and judged on {spec.holdout_days:g} days "
            "after that (holdout_days)"
        )

    if isinstance(spec, RulSettings):
        v = train_rul(config, store, registry, clock, spec, machine, end, now_ns)
    else:
        assert kinds is not None
        v = train(config, store, registry, clock, spec, machine, end, kinds[spec.detector], now_ns)  # fmt: skip
    if champion is None:
        return v, record(store, first_decision(v, clock.now_ns()))
    return v, record(store, decide(config, store, registry, clock, spec, machine, champion, v, now_ns, kinds))  # fmt: skip


def decide(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    spec: ModelSettings | RulSettings,
    machine: MachineSettings,
    champion: ModelVersion,
    challenger: ModelVersion,
    now_ns: int,
    kinds: dict[str, type[Detector]] | None = None,
) -> Decision:
    """Judge ``challenger`` against ``champion`` on the data neither was trained on, up to
    ``now_ns`` (not stored: :func:`challenge` stores it)."""
    v = challenger
    holdout = int(spec.holdout_days * DAY_NS)
    start = max(champion.trained_to_ns, v.trained_to_ns)
    span = TimeRange(start, now_ns)
    losses: tuple[F64, F64, I64, F64] | str
    if now_ns - start < holdout / 2:
        losses = f"only {(now_ns - start) / DAY_NS:.2f} days are unseen by both ({spec.holdout_days / 2:g} needed)"  # fmt: skip
    elif isinstance(spec, RulSettings):
        losses = rul_losses(config, store, registry, clock, spec, machine, champion, v, span)
    else:
        assert kinds is not None
        losses = detector_losses(config, store, registry, clock, spec, machine, champion, v, span, kinds)  # fmt: skip
    metric = "mae_h" if isinstance(spec, RulSettings) else "balanced_error"
    return judge(spec.name, machine.path, champion, v, metric, losses, eval_from_ns=start,
                 eval_to_ns=now_ns, now_ns=clock.now_ns())  # fmt: skip


def _lives_of(config: GenbaConfig, store: Store, registry: TagRegistry, clock: Clock, rul: RulSettings, machine: MachineSettings, model: RulModel, span: TimeRange) -> tuple[F64, F64, I64]:  # fmt: skip
    """``model``'s RUL on the rows of ``span`` (read with its own signals, and the history
    before that its features look back on), the truth, and each row's life."""
    cond = [c for c in str(model.params["conditions"]).split(",") if c]
    own = rul.model_copy(update={"tags": [s for s in model.signals if s not in cond], "conditions": cond})  # fmt: skip
    back = int(2 * model.params["cap_h"] / 24 * DAY_NS)
    lives, *_ = read_lives(config, store, registry, clock, own, machine, TimeRange(span.start_ns - back, span.end_ns))  # fmt: skip
    pred = model.predict(lives).rul_h
    y = lives.rul_h(rul.cap_h)
    pred[lives.t_ns < span.start_ns] = np.nan
    return pred, y, lives.life()


def rul_losses(config: GenbaConfig, store: Store, registry: TagRegistry, clock: Clock, rul: RulSettings, machine: MachineSettings, champion: ModelVersion, challenger: ModelVersion, span: TimeRange) -> tuple[F64, F64, I64, F64] | str:  # fmt: skip
    """Absolute RUL errors of both on the labelled rows of ``span`` near a failure, grouped
    by life and block of remaining hours."""
    a, y, life = _lives_of(config, store, registry, clock, rul, machine, RulModel.load(champion.data()), span)  # fmt: skip
    b, _, _ = _lives_of(config, store, registry, clock, rul, machine, RulModel.load(challenger.data()), span)  # fmt: skip
    if len(a) != len(b):
        return "the two models read different grids"
    rows = ~np.isnan(a) & ~np.isnan(b) & ~np.isnan(y)
    rows &= np.where(np.isnan(y), False, y <= 2 * rul.horizon_h)
    if rows.sum() < MIN_ROWS:
        return f"the unseen days hold {int(rows.sum())} labelled running rows ({MIN_ROWS} needed): no failure yet to judge on"  # fmt: skip
    group = life[rows] * 1000 + (y[rows] // BLOCK_H).astype(np.int64)
    return np.abs(a[rows] - y[rows]), np.abs(b[rows] - y[rows]), group, np.ones(int(rows.sum()))


def detector_losses(config: GenbaConfig, store: Store, registry: TagRegistry, clock: Clock, model: ModelSettings, machine: MachineSettings, champion: ModelVersion, challenger: ModelVersion, span: TimeRange, kinds: dict[str, type[Detector]]) -> tuple[F64, F64, I64, F64] | str:  # fmt: skip
    """False alarms, misses of the failures recorded and of injected step faults (module
    docstring)."""
    dets = [(v, load_detector(v.data(), kinds)) for v in (champion, challenger)]
    cond = {c for _, d in dets for c in str(d.params["conditions"]).split(",") if c}
    tags = sorted({s for v, _ in dets for s in v.signals} - cond)
    modes = {v.mode for v, _ in dets} - {""}
    every = int(model.every_s * NS_PER_S)
    names = [*tags, *sorted(cond), *sorted(modes)]
    f = frame(store, registry, machine.path, names, span, every)
    col = {n: i for i, n in enumerate(names)}
    running, starts, _ = timeline_of(config, store, registry, clock, model, machine, span, f.t_ns)  # fmt: skip
    ok = steady(f.t_ns, running, model.settle, model.settle_max_s)
    # running hours: rows within warning_h before a failure are hits to make; the last
    # warning_h of the span may precede one not yet recorded: neither hit nor false alarm
    run_h: F64 = (np.cumsum(running, dtype=np.float64) - running) * (model.every_s / 3600.0)
    end_h = float(run_h[-1]) if len(run_h) else 0.0
    k = np.searchsorted(starts, f.t_ns, "right")
    at = run_h[np.minimum(np.searchsorted(f.t_ns, starts), len(run_h) - 1)] if len(run_h) else run_h
    to_fail = np.full(len(f.t_ns), np.inf)
    has = k < len(starts)
    to_fail[has] = at[k[has]] - run_h[has]
    before = to_fail <= model.warning_h
    unknown = ~before & (end_h - run_h < model.warning_h)
    x = f.x[ok]
    if len(x) < MIN_ROWS:
        return f"the unseen days hold {len(x)} steady running rows ({MIN_ROWS} needed)"
    before, unknown = before[ok], unknown[ok]
    clean = ~before & ~unknown
    day = ((f.t_ns[ok] - span.start_ns) // (DETECTOR_BLOCK_H * 3600 * NS_PER_S)).astype(np.int64)
    med = np.nanmedian(x[clean], axis=0) if clean.any() else np.nanmedian(x, axis=0)
    spread = 1.4826 * np.nanmedian(np.abs(x - med), axis=0)

    def alarms(v: ModelVersion, det: Detector, shift: tuple[int, float] | None) -> F64:
        xx = x.copy()
        if shift is not None:
            xx[:, shift[0]] += shift[1]
        mode = xx[:, col[v.mode]] if v.mode else None
        z = det.score(xx[:, [col[s] for s in v.signals]], mode).score / det.threshold
        return np.where(np.isnan(z), np.nan, (z > 1.0).astype(float))

    # (rows, a shift, the loss is a miss, its share of the weight)
    shifts = [(col[t], INJECT_SPREADS * float(spread[col[t]])) for t in tags if spread[col[t]] > 0]  # fmt: skip
    real = 0.25 if before.any() else 0.0
    parts: list[tuple[npt.NDArray[np.bool_], tuple[int, float] | None, bool, float]] = [(clean, None, False, 0.5)]  # fmt: skip
    if real:
        parts.append((before, None, True, real))
    parts += [(clean, sh, True, (0.5 - real) / len(shifts)) for sh in shifts]
    loss_a, loss_b, groups, weights = [], [], [], []
    scored: dict[tuple[int, float] | None, tuple[F64, F64]] = {}
    for where, shift, miss, share in parts:
        if shift not in scored:
            (va, da), (vb, db) = dets
            scored[shift] = (alarms(va, da, shift), alarms(vb, db, shift))
        a, b = scored[shift]
        rows = where & (~np.isnan(a) | ~np.isnan(b))  # a row one cannot score: no alarm from it
        if not rows.any():
            continue
        a, b = np.nan_to_num(a[rows], nan=0.0), np.nan_to_num(b[rows], nan=0.0)
        if miss:
            a, b = 1.0 - a, 1.0 - b
        loss_a.append(a)
        loss_b.append(b)
        groups.append(day[rows])
        weights.append(np.full(int(rows.sum()), share / rows.sum()))
    if len(loss_a) < 2:
        return "no rows either detector scores on the unseen days (their windows are not full)"
    return np.concatenate(loss_a), np.concatenate(loss_b), np.concatenate(groups), np.concatenate(weights)  # fmt: skip
