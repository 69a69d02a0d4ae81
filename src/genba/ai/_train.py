"""Training a ``[[model]]`` from the historian: each matching machine's tags on a grid of
``every_s`` over the last ``train_days``, the rows where it runs steadily (its state timeline,
less the settling time after each stop), one detector fitted per the plant rule and stored as
the next version in the registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.ai._detector import Detector
from genba.ai._registry import ModelVersion, save_version
from genba.clock import Clock
from genba.config import GenbaConfig, LearntSettings, MachineSettings, ModelSettings
from genba.errors import ModelError, UnknownTagError
from genba.historian import Store, TimeRange, resample
from genba.kpi import Kpi
from genba.paths import matches
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S

DAY_NS = 86_400 * NS_PER_S
PLANT_RULE: dict[str, float | int | str] = {"window": 180, "stat": "median", "trim": 8}
"""The detector settings a ``[[model]]`` starts from (its ``settings`` go over them): a
30-minute median at the default 10 s rows, fitted in eight trimming rounds. Chosen on the
simulator's seeds 3, 7 and 42 and scored on 11-13 (docs/ai.md, "The simulator's truth")."""
SIGNAL_FIELDS = (
    "state_tag", "run_tag", "speed_tag", "reason_tag", "product_tag",
    "good_count_tag", "reject_count_tag", "energy_tag",
)  # fmt: skip


@dataclass(frozen=True)
class Frame:
    """A machine's tags on a grid: ``x[i, j]`` is tag ``signals[j]`` at ``t_ns[i]``."""

    t_ns: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    signals: list[str]


def machines_of(config: GenbaConfig, model: LearntSettings) -> list[MachineSettings]:
    """The machines ``model.machines`` matches; none is an error naming the fix."""
    found = [m for m in config.machine if matches(model.machines, m.path)]
    if not found:
        known = ", ".join(m.path for m in config.machine) or "(none declared)"
        raise ModelError(
            f"{_section(model)} {model.name!r}: machines = {model.machines!r} matches no [[machine]]; "
            f"machines: {known}"
        )
    return found


def _section(model: LearntSettings) -> str:
    return "[[model]]" if isinstance(model, ModelSettings) else "[[rul]]"


def tags_of(model: LearntSettings, machine: MachineSettings, registry: TagRegistry) -> list[str]:
    """The tag names the model reads on ``machine``: its own list, or every tag of the machine
    but the KPI signals and setpoints."""
    if model.tags:
        return list(model.tags)
    signals = {getattr(machine.signals, f) for f in SIGNAL_FIELDS} - {""}
    prefix = machine.path + "/"
    names = sorted(
        t.path.removeprefix(prefix)
        for t in registry
        if t.path.startswith(prefix) and "/" not in t.path.removeprefix(prefix)
    )
    out = [n for n in names if n not in signals and not n.endswith("_sp")]
    if not out:
        raise ModelError(
            f"machine {machine.path} has no tags to model (only its signals and setpoints); "
            f"name them in {_section(model)} {model.name!r} tags = [...]"
        )
    return out


def mode_of(model: LearntSettings, machine: MachineSettings, registry: TagRegistry) -> str:
    """The tag giving ``machine``'s operating mode under ``model`` ("" for none)."""
    if model.mode is not None:
        return model.mode
    product = machine.signals.product_tag
    return product if product and f"{machine.path}/{product}" in registry else ""


def conditions_of(model: LearntSettings, machine: MachineSettings, registry: TagRegistry) -> list[str]:  # fmt: skip
    """The tags the plan sets that the other signals are normalised on."""
    if model.conditions is not None:
        return list(model.conditions)
    speed = machine.signals.speed_tag or "speed"
    return [speed] if f"{machine.path}/{speed}" in registry else []


def steady(
    t_ns: npt.NDArray[np.int64], running: npt.NDArray[np.bool_], settle: float, settle_max_s: float
) -> npt.NDArray[np.bool_]:
    """Running rows past their settling time: after a stop of length L (from its first row
    not running to the row running again), rows before ``min(settle × L, settle_max_s)`` are
    left out. The node's watch applies the same rule row by row.

    >>> t = np.arange(10) * 10 * NS_PER_S
    >>> run = np.array([1, 1, 0, 0, 1, 1, 1, 1, 1, 1], dtype=bool)
    >>> steady(t, run, 2.0, 3600.0).astype(int).tolist()  # stopped 20 s: 40 s settling
    [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    >>> steady(t, ~run, 2.0, 3600.0).astype(int).tolist()  # the first stop's length is unknown
    [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    >>> steady(t, run | True, 2.0, 3600.0).astype(int).tolist()  # running all along: no start
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    n = len(t_ns)
    prev = np.r_[True, running[:-1]]
    starts = np.flatnonzero(running & ~prev)  # a row running after one that is not
    if n == 0 or settle <= 0 or not len(starts):
        return running.copy()
    stops = np.flatnonzero(~running & np.r_[False, running[:-1]])  # first row of each stop
    # the stop each start ends (none before the first row counts: its length is unknown)
    k = np.searchsorted(stops, starts) - 1
    first = stops[np.maximum(k, 0)] if len(stops) else np.zeros(len(starts), dtype=np.int64)
    length = np.where(k >= 0, t_ns[starts] - t_ns[first], 0)
    until = t_ns[starts] + np.minimum(settle * length, settle_max_s * NS_PER_S).astype(np.int64)
    seg = np.full(n, -1)
    seg[starts] = np.arange(len(starts))
    seg = np.maximum.accumulate(seg)
    late = np.where(seg >= 0, t_ns >= until[np.maximum(seg, 0)], True)
    return np.asarray(running & late)


def frame(
    store: Store,
    registry: TagRegistry,
    machine: str,
    names: list[str],
    span: TimeRange,
    every_ns: int,
) -> Frame:
    """Each tag's value (the last good sample before) at every ``every_ns`` of ``span``."""
    cols, grid = [], np.zeros(0, dtype=np.int64)
    for n in names:
        try:
            tag = registry.get(f"{machine}/{n}")
        except UnknownTagError as e:
            raise ModelError(
                f"{e} The model reads it on {machine}: fix [[model]] tags, or check "
                f"`genba tags -p '{machine}/#'`."
            ) from None
        grid, v = resample(store, tag.id, span, every_ns, "step")
        cols.append(v)
    return Frame(grid, np.column_stack(cols) if cols else np.zeros((0, 0)), list(names))


def running_rows(kpi: Kpi, machine: str, t_ns: npt.NDArray[np.int64], span: TimeRange) -> npt.NDArray[np.bool_]:  # fmt: skip
    """Which grid times the machine was running (its state timeline from the KPIs)."""
    tl = kpi.timeline(machine, str(span.start_ns // 1_000_000), str(span.end_ns // 1_000_000))
    runs = tl.machines[0]
    idx = np.searchsorted(runs.start_ns, t_ns, "right") - 1
    ok = (idx >= 0) & (t_ns < runs.end_ns[np.maximum(idx, 0)])
    return np.asarray(ok & (runs.state[np.maximum(idx, 0)] == MachineState.RUNNING))


def train(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    model: ModelSettings,
    machine: MachineSettings,
    end_ns: int,
    make: type[Detector],
    as_of_ns: int | None = None,
) -> ModelVersion:
    """Fit ``model`` for ``machine`` on the data before ``end_ns`` and store the version
    (``as_of_ns``: when, in the data's time, if not ``end_ns``)."""
    span = TimeRange(end_ns - int(model.train_days * DAY_NS), end_ns)
    names = tags_of(model, machine, registry)
    conditions = conditions_of(model, machine, registry)
    names += [c for c in conditions if c not in names]
    mode = mode_of(model, machine, registry)
    every = int(model.every_s * NS_PER_S)
    f = frame(store, registry, machine.path, names + ([mode] if mode else []), span, every)
    x, m = (f.x[:, :-1], f.x[:, -1]) if mode else (f.x, None)
    keep = np.ones(len(f.t_ns), dtype=bool)
    if model.running_only:
        kpi = Kpi(config, registry, store, clock, vouched_until=lambda: end_ns)
        running = running_rows(kpi, machine.path, f.t_ns, span)
        keep = steady(f.t_ns, running, model.settle, model.settle_max_s)
    x = x[keep]
    m = None if m is None else m[keep]
    params = PLANT_RULE | model.settings | {"conditions": ",".join(conditions)}
    det = make(**params).fit(x, names, mode=m)
    s = det.score(x, mode=m)
    scored = s.score[~np.isnan(s.score)]
    metrics = {
        "grid_rows": len(f.t_ns),
        "running_share": float(keep.mean()) if len(keep) else 0.0,
        "threshold": det.threshold,
        "training_alarm_share": float((scored > det.threshold).mean()) if len(scored) else 0.0,
        "score_p50": float(np.quantile(scored, 0.5)) if len(scored) else None,
        "score_p99": float(np.quantile(scored, 0.99)) if len(scored) else None,
        "left_out": [
            n for n, u in zip(names, det.used, strict=True) if not u and n not in conditions
        ],
        "modes": det.norm["modes"].tolist() if det.norm else [],
    }
    return save_version(
        store, model.name, machine.path, det, trained_from_ns=span.start_ns,
        trained_to_ns=span.end_ns, rows=int(keep.sum()), metrics=metrics, now_ns=clock.now_ns(),
        mode=mode, as_of_ns=as_of_ns,
    )  # fmt: skip
