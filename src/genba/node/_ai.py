"""The node's anomaly watch: each ``[[model]]``'s latest trained version scores its machine
from the bus and publishes the score as tags the historian stores, with an ISA-18.2 alarm.

Every ``every_s`` of the node's clock (the model's grid, as trained) each watched machine
gives one row: the last value of each of its signals (and of its mode tag). A row counts only
as in training: while the machine runs (its state tag), past the settling time after a stop
(``settle`` × the stop's length, at most ``settle_max_s``), with every signal given. The
detector scores the last ``window`` rows that counted (a stop pauses the window, a gap in the
data empties it), and the node publishes:

* ``<machine>/anomaly/score`` — the score over the model's threshold: above 1 is anomalous
  (an ISA-18.2 ``high`` alarm at 1.0, named ``<model>/<machine>/anomaly``, goes with it);
* ``<machine>/anomaly/<signal>`` — each signal's share of the score (0–1): what to look at;
  the alarm's text names the top three when it fires.

A machine that stops gets no row (no score, no alarm: a stop is not an anomaly).

Training in the node: a model with no trained version is trained from the node's own store as
soon as it holds enough data (tried every ``TRY_EVERY_S``), and each is trained again every
``retrain_days`` (0: never) — in a worker thread, the bus and the other machines scored
meanwhile. A new version is a challenger: it replaces the one in service on the next tick only
when it measures better on the newest days neither saw (:mod:`genba.ai._champion`), or when a
person pins it. A model
that cannot be trained (too little data, a tag that does not exist), or one that fails its
hash, is listed in ``problems`` with the fix; the others run."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from genba.ai import ALARM_DEADBAND, Detector, ModelVersion, in_service, latest, load_version
from genba.ai._stack import Stack
from genba.alarms import AlarmRule
from genba.bus import Bus, Overflow
from genba.clock import Clock
from genba.component import ComponentContext, Shutdown
from genba.config import GenbaConfig, MachineSettings, ModelSettings, Section
from genba.errors import GenbaError
from genba.historian import Store
from genba.node._alarms import AlarmService
from genba.node._drift import DriftReport, DriftWatch, attempt, check_drift, too_soon
from genba.paths import matches
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import NS_PER_S, Quality, SampleBatch, TagSpec

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
    mode: int | None = None
    """Tag id of the operating mode, when the model learnt one per mode."""
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


class _Group:
    """Watches whose detectors stack (one kind, signal count, window and statistic): each
    tick scores all their rows in a few array calls (:class:`genba.ai._stack.Stack`), with
    each machine's window, stop and settling kept in arrays."""

    def __init__(self, watches: list[Watch]) -> None:
        self.watches = watches
        n = len(watches)
        self.stack = Stack([w.detector for w in watches])
        self.all = np.arange(n, dtype=np.int64)
        self.inputs = np.array([w.inputs for w in watches], dtype=np.int64)
        self.state = np.array([-1 if w.state is None else w.state for w in watches], dtype=np.int64)  # fmt: skip
        self.mode = np.array([-1 if w.mode is None else w.mode for w in watches], dtype=np.int64)
        self.outputs = np.array([w.outputs for w in watches], dtype=np.int32)
        self.window = int(watches[0].detector.params["window"])
        self.threshold = np.array([w.detector.threshold for w in watches])
        self.settle = np.array([w.model.settle for w in watches])
        self.settle_max_ns = np.array([w.model.settle_max_s * NS_PER_S for w in watches])
        self.raw = np.zeros((n, self.window))
        """The raw scores of each machine's last ``window`` rows (a ring, its next slot at
        ``at``)."""
        self.filled = np.zeros(n, dtype=np.int64)
        self.at = np.zeros(n, dtype=np.int64)
        self.stopped = np.full(n, -1, dtype=np.int64)
        """When each machine stopped (its first tick not running); -1 while it runs."""
        self.settled = np.zeros(n, dtype=np.int64)
        """Rows count again from this time (the settling after the last stop)."""

    def _learn(self, rows: np.ndarray, x: np.ndarray, mode: np.ndarray | None, scored: np.ndarray) -> None:  # fmt: skip
        """A streaming detector learns each row it scored that is not in alarm."""
        if not self.stack.dets[0].streaming:
            return
        score = self._scores(scored)
        alarmed = set(scored[score > self.threshold[scored]].tolist())
        for j, i in enumerate(rows.tolist()):
            if i not in alarmed:
                m = None if mode is None else mode[j : j + 1]
                self.watches[i].detector.learn(x[j : j + 1], m)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """The window scores of full windows, oldest raw score first (the ring's next slot)."""
        order = (self.at[rows][:, None] + np.arange(self.window)) % self.window
        return self.stack.dets[0].window_scores(self.raw[rows[:, None], order])

    def tick(self, last: np.ndarray, now_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Output tag ids and values of the machines whose row counts and window is full."""
        state = np.where(self.state >= 0, last[np.maximum(self.state, 0)], np.nan)
        running = state == MachineState.RUNNING
        stopping = ~running & (self.stopped < 0)
        self.stopped[stopping] = now_ns
        back = running & (self.stopped >= 0)
        wait = np.minimum(self.settle[back] * (now_ns - self.stopped[back]), self.settle_max_ns[back])  # fmt: skip
        self.settled[back] = now_ns + wait.astype(np.int64)
        self.stopped[back] = -1
        rows = self.all[running & (now_ns >= self.settled)]
        if not len(rows):
            return np.zeros(0, dtype=np.int32), np.zeros(0)
        x = last[self.inputs[rows]]
        mode = None
        if self.stack.normalised:
            mode = np.where(self.mode[rows] >= 0, last[np.maximum(self.mode[rows], 0)], 0.0)
        part = self.stack.contributions(x, rows, mode)
        gap = np.isnan(part).any(axis=1)
        self.filled[rows[gap]] = 0  # a gap (or a mode never trained): no score across it
        ok, part = rows[~gap], part[~gap]
        self.raw[ok, self.at[ok] % self.window] = part.sum(axis=1)
        self.at[ok] += 1
        self.filled[ok] += 1
        full = self.filled[ok] >= self.window
        ok, part = ok[full], part[full]
        if not len(ok):
            self._learn(rows[~gap], x[~gap], None if mode is None else mode[~gap], ok)
            return np.zeros(0, dtype=np.int32), np.zeros(0)
        self._learn(rows[~gap], x[~gap], None if mode is None else mode[~gap], ok)
        score = self._scores(ok)
        th = self.threshold[ok]
        mag = np.abs(part)
        total = mag.sum(axis=1, keepdims=True)
        shares = np.divide(mag, total, out=np.zeros_like(mag), where=total > 0)
        for i, sh in zip(ok.tolist(), shares, strict=True):
            w = self.watches[i]
            w.shares = sh
            w.scored += 1
        values = np.column_stack([np.where(th > 0, score / np.where(th > 0, th, 1.0), score), shares])  # fmt: skip
        return self.outputs[ok].ravel(), values.ravel()


class AnomalyWatch:
    """Scores every ``[[model]]``'s machines from the bus (module docstring)."""

    name: ClassVar[str] = "ai"
    order: ClassVar[int] = 65  # after the alarms, whose engine it adds its rules to
    sections: ClassVar[tuple[Section[Any], ...]] = ()
    shutdown: ClassVar[Shutdown] = Shutdown.CANCEL  # it publishes: stop before the bus closes

    TRY_EVERY_S: ClassVar[float] = 3600.0
    """How often a model that could not be trained yet is tried again (node clock)."""

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        if not ctx.config.model:
            return None
        alarms = ctx.components.get(AlarmService.name)
        return cls(
            ctx.config.model, list(ctx.config.machine), store=ctx.store, bus=ctx.bus,
            registry=ctx.registry, clock=ctx.clock,
            alarms=alarms if isinstance(alarms, AlarmService) else None, config=ctx.config,
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
        config: GenbaConfig | None = None,
    ) -> None:
        """``config``: the node's, to train models in the node (none: only stored versions)."""
        self.bus, self.registry, self.clock = bus, registry, clock
        self.store, self.alarms, self.config = store, alarms, config
        self.watches: list[Watch] = []
        self._groups: list[_Group] | None = None
        self._problems: dict[tuple[str, str], str] = {}
        self._pairs: list[tuple[ModelSettings, MachineSettings]] = []
        self._tried: dict[tuple[str, str], int] = {}
        self.drift = DriftWatch()
        self.errors = 0
        self.trained = 0
        for model in models:
            mine = [m for m in machines if matches(model.machines, m.path)]
            if not mine:
                self._problems[(model.name, "")] = (
                    f"[[model]] {model.name!r}: machines = {model.machines!r} matches no [[machine]]"
                )
            for machine in mine:
                self._pairs.append((model, machine))
                try:
                    self._watch(store, model, machine, alarms)
                except GenbaError as e:
                    self._problems[(model.name, machine.path)] = str(e)
        self.last = np.full(registry.max_id + 1024, np.nan)
        self.sub = bus.subscribe("#", name="ai", overflow=Overflow.DROP_OLDEST)

    def _watch(self, store: Store, model: ModelSettings, machine: MachineSettings, alarms: AlarmService | None, v: ModelVersion | None = None) -> None:  # fmt: skip
        v = v or in_service(store, model.name, machine.path)
        if v is None:
            raise GenbaError(
                f"model {model.name} has no trained version for {machine.path}: the node "
                f"trains it once it holds {model.train_days:g} days of its data (or run "
                f"`genba ai train --model {model.name}` with the node stopped)"
            )
        det = load_version(v)
        inputs = [self.registry.get(f"{machine.path}/{s}").id for s in v.signals]
        state_tag = machine.signals.state_tag
        state = self.registry.get(f"{machine.path}/{state_tag}").id if state_tag else None
        mode = self.registry.get(f"{machine.path}/{v.mode}").id if v.mode else None
        score = f"{machine.path}/anomaly/score"
        specs = [TagSpec(score, "1", f"anomaly score of model {model.name} v{v.version} over its threshold: above 1 is anomalous", 0.0, 1.0)]  # fmt: skip
        specs += [
            TagSpec(f"{machine.path}/anomaly/{s}", "1", f"share of {s} in the anomaly score")
            for s in v.signals
        ]
        outputs = [t.id for t in self.registry.ensure(specs)]
        self.watches = [w for w in self.watches if (w.model.name, w.machine.path) != (model.name, machine.path)]  # fmt: skip
        self.watches.append(Watch(model, machine, v, det, inputs, state, outputs, mode))
        self._groups = None  # regrouped on the next tick
        self._problems.pop((model.name, machine.path), None)
        if alarms is not None:
            rule = AlarmRule(
                tag=score, kind="high", limit=1.0, name=f"{model.name}/{machine.path}/anomaly",
                priority="medium", deadband=ALARM_DEADBAND,
                message=f"{machine.path} left its normal operation (model {model.name}; each "
                f"signal's share in {machine.path}/anomaly/*).",
            )  # fmt: skip
            if rule.key not in {a["name"] for a in alarms.engine.alarms()}:
                alarms.engine.add_rule(rule)
            watch = self.watches[-1]
            alarms.engine.details[rule.key] = watch.top

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._take(), name="ai:bus")
            if self.config is not None:
                tg.create_task(self._trainer(), name="ai:train")
            every = min(w.model.every_s for w in self.watches) if self.watches else 10.0
            while True:
                await self.clock.sleep(every)
                try:
                    await self.tick(self.clock.now_ns())
                except Exception:  # one bad model must not stop the others, let alone the node
                    self.errors += 1
                    log.exception("anomaly scoring failed; trying again next tick")

    async def _trainer(self) -> None:
        while True:
            try:
                await self.check_drift(self.clock.now_ns())
                await self.train_due(self.clock.now_ns())
            except Exception:  # never stop scoring for a training that failed
                self.errors += 1
                log.exception("training in the node failed; trying again later")
            await self.clock.sleep(min(self.TRY_EVERY_S, *(m.retrain_days * 86_400 for m, _ in self._pairs if m.retrain_days > 0)))  # fmt: skip

    async def train_due(self, now_ns: int) -> list[str]:
        """Train every model for a machine that has no version yet (tried at most every
        ``TRY_EVERY_S``) or whose newest version is ``retrain_days`` old, as a challenger to
        the version in service (:func:`genba.ai.challenge`): it replaces it only when it
        measures better. Returns the ``model/machine`` keys trained."""
        from genba.ai import DETECTORS, challenge

        assert self.config is not None
        done = []
        for model, machine in self._pairs:
            key = (model.name, machine.path)
            newest = latest(self.store, model.name, machine.path)
            if key in self.drift.force:
                due = True
            elif newest is not None:
                due = model.retrain_days > 0 and now_ns - newest.as_of >= model.retrain_days * 86_400 * NS_PER_S  # fmt: skip
            else:
                due = now_ns - self._tried.get(key, -(2**62)) >= self.TRY_EVERY_S * NS_PER_S
            champion = next((w.version for w in self.watches if (w.model.name, w.machine.path) == key), None)  # fmt: skip
            if not due or too_soon(model, champion, now_ns) or model.detector not in DETECTORS:
                continue
            self._tried[key] = now_ns
            self.drift.force.discard(key)
            errors = [0]
            got = await attempt(
                f"model {model.name} for {machine.path}", challenge, self.config, self.store,
                self.registry, self.clock, model, machine, now_ns, DETECTORS,
                problems=self._problems, key=key, errors=errors,
            )  # fmt: skip
            self.errors += errors[0]
            if got is None:
                continue
            v, decision = got
            self._problems.pop(key, None)
            if decision.promoted:
                self._watch(self.store, model, machine, self.alarms, v)
            self.trained += 1
            done.append(f"{model.name}/{machine.path}")
            log.info("trained %s for %s: version %d, %s", model.name, machine.path, v.version, decision.reason)  # fmt: skip
        return done

    async def check_drift(self, now_ns: int) -> list[DriftReport]:
        """Compare each version in service with its training data (every hour at most);
        drift is recorded and trains a challenger on the next :meth:`train_due`."""
        from genba.ai import DETECTORS

        if self.config is None:
            return []
        watched = [(w.model, w.machine, w.version) for w in self.watches]
        return await self.drift.round(watched, now_ns, check_drift, (self.config, self.store, self.registry, self.clock), DETECTORS)  # fmt: skip

    def serve(self, name: str, machine: str) -> ModelVersion | None:
        """Put the version in service for ``name`` on ``machine`` (after a pin or a rollback)
        into the watch; returns it (None: this node does not run that model there)."""
        for model, m in self._pairs:
            if (model.name, m.path) == (name, machine):
                v = in_service(self.store, name, machine)
                if v is not None:
                    self._watch(self.store, model, m, self.alarms, v)
                return v
        return None

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
        """A row for every steadily running machine; publish the scores of full windows."""
        if self._groups is None:
            keyed: dict[tuple[Any, ...], list[Watch]] = {}
            for w in self.watches:
                p = w.detector.params
                key = (w.detector.kind, len(w.inputs), int(p["window"]), p["stat"])
                keyed.setdefault(key, []).append(w)
            self._groups = [_Group(ws) for ws in keyed.values()]
        parts = [g.tick(self.last, now_ns) for g in self._groups]
        ids = np.concatenate([i for i, _ in parts]) if parts else np.zeros(0, dtype=np.int32)
        if len(ids):
            await self.bus.publish(
                SampleBatch.from_columns(
                    tag_ids=ids.astype(np.int32),
                    ts_ns=np.full(len(ids), now_ns, dtype=np.int64),
                    values=np.concatenate([v for _, v in parts]),
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
            "trained": self.trained,
        }  # fmt: skip

    def problems(self) -> list[str]:
        return list(self._problems.values()) + self.drift.problems()
