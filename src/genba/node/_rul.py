"""The node's remaining-useful-life watch: each ``[[rul]]``'s latest trained version
estimates its machines' remaining running hours from the node's own store, publishes them as
tags the historian keeps, and raises an alarm when a failure within the horizon is likely.

Every :data:`RulWatch.EVERY_S` of the node's clock, for each machine with a version (in a
worker thread, the bus and the other components running meanwhile), from the history before
now (:func:`genba.ai.estimate_now`):

* ``<machine>/rul/hours``, ``rul/low_h``, ``rul/high_h`` — the remaining running hours to a
  wear-out failure and its 80 % interval;
* ``<machine>/rul/p_fail`` — the probability of a failure within ``horizon_h`` running hours,
  with an ISA-18.2 ``high`` alarm at ``alarm_probability`` named ``<rul>/<machine>/failure``
  (clearing under half of it: it holds until the repair) whose text says the date to plan
  maintenance before.

Training: a machine with no version is trained as soon as its history holds ``min_failures``
failures (tried every ``TRY_EVERY_S``; until then ``problems`` says "not enough failures to
learn from (n found, m needed)"), and again after each new failure and every
``retrain_days``; each new version is a challenger that replaces the one in service only when
it measures better (:mod:`genba.ai._champion`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

import numpy as np

from genba.ai import (
    ModelVersion,
    RulModel,
    RulNow,
    challenge,
    estimate_now,
    in_service,
    latest,
    load_rul,
)
from genba.ai._rul import WARNING_DEADBAND
from genba.alarms import AlarmRule
from genba.bus import Bus
from genba.clock import Clock
from genba.component import ComponentContext, Shutdown
from genba.config import GenbaConfig, MachineSettings, RulSettings, Section
from genba.errors import GenbaError
from genba.historian import Store
from genba.node._alarms import AlarmService
from genba.node._drift import DriftReport, DriftWatch, attempt, check_drift, too_soon
from genba.paths import matches
from genba.tags import TagRegistry
from genba.timeparse import format_time
from genba.types import NS_PER_S, SampleBatch, TagSpec

log = logging.getLogger("genba.rul")
OUTPUTS = ("hours", "low_h", "high_h", "p_fail")


class RulWatch:
    """Estimates every ``[[rul]]``'s machines (module docstring)."""

    name: ClassVar[str] = "rul"
    order: ClassVar[int] = 66  # after the alarms, whose engine it adds its rules to
    sections: ClassVar[tuple[Section[Any], ...]] = ()
    shutdown: ClassVar[Shutdown] = Shutdown.CANCEL  # it publishes: stop before the bus closes

    EVERY_S: ClassVar[float] = 600.0
    """How often each machine's RUL is estimated (node clock)."""
    TRY_EVERY_S: ClassVar[float] = 3600.0
    """How often a machine that could not be trained yet is tried again (node clock)."""

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        if not ctx.config.rul:
            return None
        alarms = ctx.components.get(AlarmService.name)
        return cls(
            ctx.config, store=ctx.store, bus=ctx.bus, registry=ctx.registry, clock=ctx.clock,
            alarms=alarms if isinstance(alarms, AlarmService) else None,
        )  # fmt: skip

    def __init__(
        self,
        config: GenbaConfig,
        *,
        store: Store,
        bus: Bus,
        registry: TagRegistry,
        clock: Clock,
        alarms: AlarmService | None,
    ) -> None:
        self.config, self.store, self.bus = config, store, bus
        self.registry, self.clock, self.alarms = registry, clock, alarms
        self.pairs: list[tuple[RulSettings, MachineSettings]] = []
        self.models: dict[tuple[str, str], tuple[ModelVersion, RulModel]] = {}
        self.estimates: dict[tuple[str, str], RulNow] = {}
        self._problems: dict[tuple[str, str], str] = {}
        self._tried: dict[tuple[str, str], int] = {}
        self.drift = DriftWatch()
        self.errors = 0
        self.trained = 0
        for rul in config.rul:
            mine = [m for m in config.machine if matches(rul.machines, m.path)]
            if not mine:
                self._problems[(rul.name, "")] = (
                    f"[[rul]] {rul.name!r}: machines = {rul.machines!r} matches no [[machine]]"
                )
            for machine in mine:
                self.pairs.append((rul, machine))
                try:
                    v = in_service(store, rul.name, machine.path)
                    if v is not None:
                        self._use(rul, machine, v)
                except GenbaError as e:
                    self._problems[(rul.name, machine.path)] = str(e)

    def _use(self, rul: RulSettings, machine: MachineSettings, v: ModelVersion) -> None:
        """Put version ``v`` in service for ``machine``: its tags and its alarm rule."""
        self.models[(rul.name, machine.path)] = (v, load_rul(v))
        self._problems.pop((rul.name, machine.path), None)
        p = machine.path
        specs = [
            TagSpec(
                f"{p}/rul/hours",
                "h",
                f"remaining running hours to a wear-out failure (model {rul.name} v{v.version})",
                0.0,
                rul.cap_h,
            ),
            TagSpec(
                f"{p}/rul/low_h", "h", "remaining running hours, 10 % quantile", 0.0, rul.cap_h
            ),
            TagSpec(
                f"{p}/rul/high_h", "h", "remaining running hours, 90 % quantile", 0.0, rul.cap_h
            ),
            TagSpec(
                f"{p}/rul/p_fail",
                "1",
                f"probability of a wear-out failure within {rul.horizon_h:g} running hours",
                0.0,
                1.0,
            ),
        ]
        self.registry.ensure(specs)
        if self.alarms is not None:
            rule = AlarmRule(
                tag=f"{p}/rul/p_fail", kind="high", limit=rul.alarm_probability,
                name=f"{rul.name}/{p}/failure", priority="high", deadband=WARNING_DEADBAND * rul.alarm_probability,
                message=f"{p} is likely to fail within {rul.horizon_h:g} running hours "
                f"(model {rul.name}); plan its maintenance.",
            )  # fmt: skip
            if rule.key not in {a["name"] for a in self.alarms.engine.alarms()}:
                self.alarms.engine.add_rule(rule)
            key = (rul.name, p)
            self.alarms.engine.details[rule.key] = lambda: self._detail(key)

    def _detail(self, key: tuple[str, str]) -> str:
        e = self.estimates.get(key)
        if e is None:
            return ""
        when = "" if e.plan_before_ns is None else f"; plan maintenance before {format_time(e.plan_before_ns)}"  # fmt: skip
        return f"{e.rul_h:.0f} running h left ({e.low_h:.0f}–{e.high_h:.0f}){when}"

    async def run(self) -> None:
        while True:
            try:
                await self.check_drift(self.clock.now_ns())
                await self.train_due(self.clock.now_ns())
                await self.estimate(self.clock.now_ns())
            except Exception:  # never stop the node for a model
                self.errors += 1
                log.exception("RUL estimation failed; trying again later")
            await self.clock.sleep(self.EVERY_S)

    async def train_due(self, now_ns: int) -> list[str]:
        """Train each machine with no version (tried at most every ``TRY_EVERY_S``), whose
        newest version is ``retrain_days`` old, or whose history holds a failure since it was
        trained; as a challenger that replaces the one in service only when it measures
        better. Returns the ``rul/machine`` keys trained."""
        done = []
        for rul, machine in self.pairs:
            key = (rul.name, machine.path)
            newest = latest(self.store, rul.name, machine.path)
            if key in self.drift.force:
                due = True
            elif newest is not None:
                e = self.estimates.get(key)
                new_failure = e is not None and (e.last_failure_ns or 0) > newest.as_of
                due = new_failure or (rul.retrain_days > 0 and now_ns - newest.as_of >= rul.retrain_days * 86_400 * NS_PER_S)  # fmt: skip
            else:
                due = now_ns - self._tried.get(key, -(2**62)) >= self.TRY_EVERY_S * NS_PER_S
            have = self.models.get(key)
            if not due or too_soon(rul, have[0] if have else None, now_ns):
                continue
            self._tried[key] = now_ns
            self.drift.force.discard(key)
            errors = [0]
            got = await attempt(
                f"RUL model {rul.name} for {machine.path}", challenge, self.config, self.store,
                self.registry, self.clock, rul, machine, now_ns, problems=self._problems, key=key,
                errors=errors,
            )  # fmt: skip
            self.errors += errors[0]
            if got is None:
                continue
            v, decision = got
            self._problems.pop(key, None)
            if decision.promoted:
                self._use(rul, machine, v)
            self.trained += 1
            done.append(f"{rul.name}/{machine.path}")
            log.info("trained %s for %s: version %d, %s", rul.name, machine.path, v.version, decision.reason)  # fmt: skip
        return done

    async def check_drift(self, now_ns: int) -> list[DriftReport]:
        """Compare each version in service with its training data (every hour at most);
        drift is recorded and trains a challenger on the next :meth:`train_due`."""
        specs = {(r.name, m.path): (r, m) for r, m in self.pairs}
        watched = [(*specs[k], v) for k, (v, _) in self.models.items() if k in specs]
        return await self.drift.round(watched, now_ns, check_drift, (self.config, self.store, self.registry, self.clock))  # fmt: skip

    def serve(self, name: str, machine: str) -> ModelVersion | None:
        """Put the version in service for ``name`` on ``machine`` (after a pin or a rollback)
        to work; returns it (None: this node does not run that model there)."""
        for rul, m in self.pairs:
            if (rul.name, m.path) == (name, machine):
                v = in_service(self.store, name, machine)
                if v is not None:
                    self._use(rul, m, v)
                return v
        return None

    async def estimate(self, now_ns: int) -> list[RulNow]:
        """Estimate every machine with a model now; publish the tags. Returns the estimates."""
        out = []
        for rul, machine in self.pairs:
            key = (rul.name, machine.path)
            if key not in self.models:
                continue
            v, model = self.models[key]
            try:
                e = await asyncio.to_thread(
                    estimate_now, self.config, self.store, self.registry, self.clock, rul,
                    machine, model, v, now_ns,
                )  # fmt: skip
            except GenbaError as err:
                self._problems[key] = f"RUL of {machine.path} ({rul.name}): {err}"
                continue
            if e is None:
                continue
            self._problems.pop(key, None)
            self.estimates[key] = e
            out.append(e)
        if out:
            ids, values = [], []
            for e in out:
                for name, value in zip(
                    OUTPUTS, (e.rul_h, e.low_h, e.high_h, e.p_fail), strict=True
                ):
                    ids.append(self.registry.get(f"{e.machine}/rul/{name}").id)
                    values.append(value)
            await self.bus.publish(
                SampleBatch.from_columns(
                    tag_ids=np.array(ids, dtype=np.int32),
                    ts_ns=np.full(len(ids), now_ns, dtype=np.int64),
                    values=np.array(values),
                )
            )
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Every machine's latest estimate, or why it has none (the API's and screens')."""
        out = []
        for rul, machine in self.pairs:
            key = (rul.name, machine.path)
            e = self.estimates.get(key)
            row: dict[str, Any] = {"machine": machine.path, "model": rul.name}
            if e is not None:
                row |= asdict(e)
                row["plan_before_local"] = self._local(machine, e.plan_before_ns)
            else:
                row["problem"] = self._problems.get(key) or (
                    "trained: the first estimate comes with the next round"
                    if key in self.models
                    else "not trained yet"
                )
            out.append(row)
        return out

    def _local(self, machine: MachineSettings, t_ns: int | None) -> str | None:
        """``t_ns`` in the time zone of the machine's line's calendar (UTC without one)."""
        if t_ns is None:
            return None
        name = self.config.line_settings(machine.line).calendar
        tz = next((c.timezone for c in self.config.calendar if c.name == name), "UTC")
        return datetime.fromtimestamp(t_ns / NS_PER_S, ZoneInfo(tz)).isoformat(timespec="minutes")

    def health(self) -> dict[str, Any]:
        return {
            "machines": [
                {
                    "model": r.name,
                    "machine": m.path,
                    "version": self.models[(r.name, m.path)][0].version,
                }
                for r, m in self.pairs
                if (r.name, m.path) in self.models
            ],
            "errors": self.errors,
            "trained": self.trained,
        }

    def problems(self) -> list[str]:
        return list(self._problems.values()) + self.drift.problems()
