"""Training a ``[[model]]`` from the historian: each matching machine's tags on a grid of
``every_s`` over the last ``train_days``, the rows where it runs (its state timeline), one
detector fitted and stored as the next version in the registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.ai._detector import Detector
from genba.ai._registry import ModelVersion, save_version
from genba.clock import Clock
from genba.config import GenbaConfig, MachineSettings, ModelSettings
from genba.errors import ModelError, UnknownTagError
from genba.historian import Store, TimeRange, resample
from genba.kpi import Kpi
from genba.paths import matches
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S

DAY_NS = 86_400 * NS_PER_S
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


def machines_of(config: GenbaConfig, model: ModelSettings) -> list[MachineSettings]:
    """The machines ``model.machines`` matches; none is an error naming the fix."""
    found = [m for m in config.machine if matches(model.machines, m.path)]
    if not found:
        known = ", ".join(m.path for m in config.machine) or "(none declared)"
        raise ModelError(
            f"[[model]] {model.name!r}: machines = {model.machines!r} matches no [[machine]]; "
            f"machines: {known}"
        )
    return found


def tags_of(model: ModelSettings, machine: MachineSettings, registry: TagRegistry) -> list[str]:
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
            f"name them in [[model]] {model.name!r} tags = [...]"
        )
    return out


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
) -> ModelVersion:
    """Fit ``model`` for ``machine`` on the data before ``end_ns`` and store the version."""
    span = TimeRange(end_ns - int(model.train_days * DAY_NS), end_ns)
    names = tags_of(model, machine, registry)
    f = frame(store, registry, machine.path, names, span, int(model.every_s * NS_PER_S))
    keep = np.ones(len(f.t_ns), dtype=bool)
    if model.running_only:
        kpi = Kpi(config, registry, store, clock, vouched_until=lambda: end_ns)
        keep = running_rows(kpi, machine.path, f.t_ns, span)
    x = f.x[keep]
    det = make(**model.settings).fit(x, f.signals)
    s = det.score(x)
    scored = s.score[~np.isnan(s.score)]
    metrics = {
        "grid_rows": len(f.t_ns),
        "running_share": float(keep.mean()) if len(keep) else 0.0,
        "threshold": det.threshold,
        "training_alarm_share": float((scored > det.threshold).mean()) if len(scored) else 0.0,
        "score_p50": float(np.quantile(scored, 0.5)) if len(scored) else None,
        "score_p99": float(np.quantile(scored, 0.99)) if len(scored) else None,
        "left_out": [n for n, u in zip(f.signals, det.used, strict=True) if not u],
    }
    return save_version(
        store, model.name, machine.path, det, trained_from_ns=span.start_ns,
        trained_to_ns=span.end_ns, rows=int(keep.sum()), metrics=metrics, now_ns=clock.now_ns(),
    )  # fmt: skip
