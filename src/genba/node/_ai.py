"""The node's anomaly watch: each ``[[model]]``'s latest trained version scores its machine
from the bus and publishes the score as tags the historian stores, with an ISA-18.2 alarm.

Every ``every_s`` of the node's clock (the model's grid, as trained) each watched machine
gives one row: the last value of each of its signals. A row counts only while the machine
runs (its state tag says running, as in training) and every signal has a value; the detector
scores the last ``window`` rows (its trailing mean), and the node publishes:

* ``<machine>/anomaly/score`` — the score over the model's threshold: above 1 is anomalous
  (an ISA-18.2 ``high`` alarm at 1.0, named ``<model>/<machine>/anomaly``, goes with it);
* ``<machine>/anomaly/<signal>`` — each signal's share of the score (0–1): what to look at;
  the alarm's text names the top three when it fires.

A machine that stops gets no row (no score, no alarm: a stop is not an anomaly). A model with
no trained version, or one that fails its hash, is listed in ``problems`` with the fix; the
others run."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from genba.ai import Detector, ModelVersion, latest, load_version
from genba.alarms import AlarmRule
from genba.bus import Bus, Overflow
from genba.clock import Clock
from genba.component import ComponentContext, Shutdown
from genba.config import MachineSettings, ModelSettings, Section
from genba.errors import GenbaError
from genba.historian import Store
from genba.node._alarms import AlarmService
from genba.paths import matches
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import Quality, SampleBatch, TagSpec

log = logging.getLogger("genba.ai")


@dataclass
class Watch:
    """One model version watching one machine."""

    model: ModelSettings
    machine: MachineSettings
    version: ModelVersion
    detector: Detector
    inputs: list[int]
    """Tag ids of the detector's signals, in its column order."""
    state: int | None
    outputs: list[int]
    """Tag ids of the score and of each signal's share."""
    raw: list[float] = field(default_factory=list)
    """The raw scores of the last ``window`` rows (their mean is the score)."""
    shares: np.ndarray | None = None
    """Each signal's share of the last row's score."""
    scored: int = 0

    def top(self, n: int = 3) -> str:
        """The signals that contribute most to the last score, for the alarm's text."""
        if self.shares is None:
            return ""
        order = np.argsort(-self.shares)[:n]
        parts = [f"{self.version.signals[i]} {100 * self.shares[i]:.0f} %" for i in order if self.shares[i] > 0]  # fmt: skip
        return f"Top signals: {', '.join(parts)}." if parts else ""


class AnomalyWatch:
    """Scores every ``[[model]]``'s machines from the bus (module docstring)."""

    name: ClassVar[str] = "ai"
    order: ClassVar[int] = 65  # after the alarms, whose engine it adds its rules to
    sections: ClassVar[tuple[Section[Any], ...]] = ()
    shutdown: ClassVar[Shutdown] = Shutdown.CANCEL  # it publishes: stop before the bus closes

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        if not ctx.config.model:
            return None
        alarms = ctx.components.get(AlarmService.name)
        return cls(
            ctx.config.model, list(ctx.config.machine), store=ctx.store, bus=ctx.bus,
            registry=ctx.registry, clock=ctx.clock,
            alarms=alarms if isinstance(alarms, AlarmService) else None,
        )  # fmt: skip

    def __init__(
        self,
        models: list[ModelSettings],
        machines: list[MachineSettings],
        *,
        store: Store,
        bus: Bus,
        registry: TagRegistry,
        clock: Clock,
        alarms: AlarmService | None,
    ) -> None:
        self.bus, self.registry, self.clock = bus, registry, clock
        self.watches: list[Watch] = []
        self._problems: list[str] = []
        self.errors = 0
        for model in models:
            mine = [m for m in machines if matches(model.machines, m.path)]
            if not mine:
                self._problems.append(
                    f"[[model]] {model.name!r}: machines = {model.machines!r} matches no [[machine]]"
                )
            for machine in mine:
                try:
                    self._watch(store, model, machine, alarms)
                except GenbaError as e:
                    self._problems.append(str(e))
        self.last = np.full(registry.max_id + 1024, np.nan)
        self.sub = bus.subscribe("#", name="ai", overflow=Overflow.DROP_OLDEST)

    def _watch(self, store: Store, model: ModelSettings, machine: MachineSettings, alarms: AlarmService | None) -> None:  # fmt: skip
        v = latest(store, model.name, machine.path)
        if v is None:
            raise GenbaError(
                f"model {model.name} has no trained version for {machine.path}: run "
                f"`genba ai train --model {model.name}` (node stopped), then restart the node"
            )
        det = load_version(v)
        inputs = [self.registry.get(f"{machine.path}/{s}").id for s in v.signals]
        state_tag = machine.signals.state_tag
        state = self.registry.get(f"{machine.path}/{state_tag}").id if state_tag else None
        score = f"{machine.path}/anomaly/score"
        specs = [TagSpec(score, "1", f"anomaly score of model {model.name} v{v.version} over its threshold: above 1 is anomalous", 0.0, 1.0)]  # fmt: skip
        specs += [
            TagSpec(f"{machine.path}/anomaly/{s}", "1", f"share of {s} in the anomaly score")
            for s in v.signals
        ]
        outputs = [t.id for t in self.registry.ensure(specs)]
        self.watches.append(Watch(model, machine, v, det, inputs, state, outputs))
        if alarms is not None:
            rule = AlarmRule(
                tag=score, kind="high", limit=1.0, name=f"{model.name}/{machine.path}/anomaly",
                priority="medium",
                message=f"{machine.path} left its normal operation (model {model.name} "
                f"v{v.version}; each signal's share in {machine.path}/anomaly/*).",
            )  # fmt: skip
            if rule.key not in {a["name"] for a in alarms.engine.alarms()}:
                alarms.engine.add_rule(rule)
            watch = self.watches[-1]
            alarms.engine.details[rule.key] = watch.top

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._take(), name="ai:bus")
            every = min(w.model.every_s for w in self.watches) if self.watches else 10.0
            while True:
                await self.clock.sleep(every)
                try:
                    await self.tick(self.clock.now_ns())
                except Exception:  # one bad model must not stop the others, let alone the node
                    self.errors += 1
                    log.exception("anomaly scoring failed; trying again next tick")

    async def _take(self) -> None:
        async for item in self.sub:
            if isinstance(item, SampleBatch) and len(item):
                self.take(item)

    def take(self, batch: SampleBatch) -> None:
        """Keep each tag's newest value (NaN after a stale mark), columnar."""
        top = int(batch.tag_ids.max())
        if top >= len(self.last):
            self.last = np.concatenate([self.last, np.full(top + 1024 - len(self.last), np.nan)])
        values = np.where(batch.quality >= Quality.BAD, np.nan, batch.values)
        self.last[batch.tag_ids] = values  # batches are in time order: the last write wins

    async def tick(self, now_ns: int) -> None:
        """A row for every running machine; publish the scores of those with a full window."""
        ids: list[int] = []
        vals: list[float] = []
        for w in self.watches:
            if w.state is None or self.last[w.state] != MachineState.RUNNING:
                w.raw.clear()  # a stop ends the window: no score across it
                continue
            row = self.last[w.inputs]
            if np.isnan(row).any():
                w.raw.clear()
                continue
            window = int(w.detector.params["window"])
            part = w.detector.contributions(row[None, :])[0]
            w.raw = [*w.raw[1 - window :], float(part.sum())] if window > 1 else [float(part.sum())]  # fmt: skip
            if len(w.raw) < window:
                continue
            score = sum(w.raw) / window  # the trailing mean, as Detector.score takes it
            total = float(np.abs(part).sum())
            shares = np.abs(part) / total if total > 0 else np.zeros(len(part))
            th = w.detector.threshold
            w.shares = shares
            ids += w.outputs
            vals += [score / th if th > 0 else score, *shares.tolist()]
            w.scored += 1
        if ids:
            await self.bus.publish(
                SampleBatch.from_columns(
                    tag_ids=np.array(ids, dtype=np.int32),
                    ts_ns=np.full(len(ids), now_ns, dtype=np.int64),
                    values=np.array(vals),
                )
            )

    def health(self) -> dict[str, Any]:
        return {
            "models": [
                {"model": w.model.name, "machine": w.machine.path, "version": w.version.version,
                 "scored": w.scored}
                for w in self.watches
            ],
            "errors": self.errors,
        }  # fmt: skip

    def problems(self) -> list[str]:
        return list(self._problems)
