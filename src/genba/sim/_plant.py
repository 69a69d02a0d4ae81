"""The discrete-event model: lines of machines in series with conveyors between them.

Each machine is one SimPy process and costs one timeout per part in the common case.
Breakdowns, wear-out and small stops are counted down in *running* seconds, so a machine
wears only while it works; the shift calendar, changeovers and reduced-speed periods are
checked at cycle boundaries. Everything the model does goes into :class:`~genba.sim._logs.Logs`,
from which the samples (:mod:`genba.sim._sampler`) and the ground truth
(:mod:`genba.sim._truth`) are computed.
"""

from __future__ import annotations

import collections
import math
import random
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from genba.calendar import OFF, WORK
from genba.sim._calendar import CalendarCursor
from genba.sim._logs import PART_GOOD, PART_STARTUP, Logs
from genba.sim._reasons import SUDDEN, Reason
from genba.sim._scenario import Scenario, SimLine, SimMachine
from genba.states import MachineState as S
from genba.types import NS_PER_S

SMALL_STOP_MAX_S = 300.0  # a stop longer than 5 minutes is no longer "small"
SPEED_EXPONENT = 20  # reject rate rises with speed as (speed)^20: a sharp knee near the optimum
SPEED_OPT = 0.92  # speed setpoint (share of rated) with the most good parts per hour

Proc = Generator[simpy.Event, Any, Any]


@dataclass
class Failure:
    """A breakdown, as it happened: for the ground truth."""

    machine: int
    start_s: float
    end_s: float
    reason: Reason
    wear_out: bool


class Buffer:
    """A conveyor: parts (by product code) in order, with a capacity."""

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.parts: collections.deque[int] = collections.deque()
        self._nonempty: simpy.Event | None = None
        self._space: simpy.Event | None = None

    def put(self, product: int) -> None:
        self.parts.append(product)
        if self._nonempty is not None:
            self._nonempty.succeed()
            self._nonempty = None

    def take(self) -> int:
        product = self.parts.popleft()
        if self._space is not None:
            self._space.succeed()
            self._space = None
        return product

    @property
    def full(self) -> bool:
        return len(self.parts) >= self.capacity

    def nonempty(self) -> simpy.Event:
        if self._nonempty is None:
            self._nonempty = self.env.event()
        return self._nonempty

    def space(self) -> simpy.Event:
        if self._space is None:
            self._space = self.env.event()
        return self._space

    def wake(self) -> None:
        """Wake whoever waits on this conveyor, so it can look at the calendar."""
        for ev in (self._nonempty, self._space):
            if ev is not None:
                ev.succeed()
        self._nonempty = self._space = None


class Line:
    """Releases the order list into the first machine and holds the conveyors."""

    def __init__(self, plant: Plant, index: int, settings: SimLine) -> None:
        self.index = index
        self.settings = settings
        self.path = settings.path
        self.buffers = [Buffer(plant.env, settings.buffer_capacity) for _ in settings.machine[1:]]
        orders = [(plant.product_code[o.product], o.quantity) for o in settings.orders]
        self._orders = orders or [(1, 10**12)]  # no orders: make the first product for ever
        self._order = 0
        self._released = 0
        self._repeat = settings.repeat_orders or not orders

    def release(self) -> int | None:
        """The product of the next part to start, or None when the order list is done."""
        while True:
            if self._order >= len(self._orders):
                if not self._repeat:
                    return None
                self._order = 0
            product, quantity = self._orders[self._order]
            if self._released < quantity:
                self._released += 1
                return product
            self._order += 1
            self._released = 0


class Machine:
    """One machine: a SimPy process working parts from its input to its output."""

    def __init__(
        self, plant: Plant, index: int, line: Line, position: int, settings: SimMachine
    ) -> None:
        self.plant = plant
        self.env = plant.env
        self.logs = plant.logs
        self.index = index
        self.line = line
        self.position = position
        self.p = settings
        self.path = f"{line.path}/{settings.name}"
        self.inbuf = line.buffers[position - 1] if position > 0 else None
        self.outbuf = line.buffers[position] if position < len(line.buffers) else None
        self.rng = random.Random(f"{plant.scenario.plant.seed}/{self.path}")
        self.cal = CalendarCursor(plant.calendar, plant.t0_ns)
        self.cal_until = 0.0
        self.state = 0
        self.reason = -1
        self.product = 0
        self.startup_left = 0
        self.temperature_sp = settings.temperature_sp_c
        self.speed_sp = settings.speed_sp_pct
        self.phase = self.rng.uniform(0, 2 * math.pi)
        self.reduced_until = -1.0
        self.next_reduced = self._draw_reduced_start(0.0)
        self.to_fail = self._draw_fail()
        self.to_small = self._draw_small()
        self.to_wear = self._new_wear_part()
        self.logs.setpoint.add(0.0, index, self.temperature_sp, self.speed_sp)
        # Reject rate (speed share s): reject_rate + k * s^SPEED_EXPONENT, whose good-parts
        # rate s * (1 - p) peaks at SPEED_OPT; see docs/simulator.md.
        self.k_speed = (1 - settings.reject_rate) / (
            (SPEED_EXPONENT + 1) * SPEED_OPT**SPEED_EXPONENT
        )
        self._speed_changed()
        self.process = self.env.process(self.run())

    # -- random draws -----------------------------------------------------------------
    def _draw_fail(self) -> float:
        return self.rng.expovariate(1.0 / (self.p.mtbf_h * 3600))

    def _draw_small(self) -> float:
        if self.p.small_stops_per_h <= 0:
            return math.inf
        return self.rng.expovariate(self.p.small_stops_per_h / 3600)

    def _draw_reduced_start(self, now: float) -> float:
        if self.p.reduced_speed_per_day <= 0:
            return math.inf
        return now + self.rng.expovariate(self.p.reduced_speed_per_day / 86_400)

    def _new_wear_part(self) -> float:
        life = self.rng.weibullvariate(
            self.p.wear_weibull_scale_h * 3600, self.p.wear_weibull_shape
        )
        self.logs.wear.add(self.env.now, self.index, life)
        return life

    # -- physics of quality -------------------------------------------------------------
    def temperature_opt(self, t: float) -> float:
        """The process temperature with the fewest rejects at time ``t`` (it drifts)."""
        p = self.p
        return p.temperature_opt_c + p.temperature_drift_c * math.sin(
            2 * math.pi * t / (p.temperature_drift_h * 3600) + self.phase
        )

    def reject_probability(self, t: float) -> float:
        dt = (self.temperature_sp - self.temperature_opt(t)) / 5.0
        return min(self.p_base + 0.03 * dt * dt, 0.95)

    def _speed_changed(self) -> None:
        """Cache what depends only on the speed setpoint (checked once per part otherwise)."""
        s = self.speed_sp / 100.0
        self.p_base = self.p.reject_rate + self.k_speed * s**SPEED_EXPONENT
        self.base_cycle = self.p.ideal_cycle_s * 100.0 / self.speed_sp

    # -- state ----------------------------------------------------------------------------
    def set_state(self, state: int, reason: int = Reason.NONE) -> None:
        if state != self.state or reason != self.reason:
            self.state, self.reason = state, reason
            self.logs.state.add2(self.env.now, self.index, state, reason)

    def write_setpoint(self, name: str, value: float) -> None:
        if name == "temperature_sp":
            self.temperature_sp = value
        elif name == "speed_sp":
            self.speed_sp = value
            self._speed_changed()
        self.logs.setpoint.add(self.env.now, self.index, self.temperature_sp, self.speed_sp)

    # -- the process ------------------------------------------------------------------------
    def run(self) -> Proc:
        while True:
            if self.env.now >= self.cal_until:
                yield from self._obey_calendar()
            product = yield from self._take()
            if product is None:
                continue
            if product != self.product:
                yield from self._changeover(product)
            yield from self._work()
            good = self._judge()
            if good and self.outbuf is not None:
                yield from self._put(product)

    def _obey_calendar(self) -> Proc:
        status, until = self.cal.at(self.env.now)
        while status != WORK:
            if status == OFF:
                self.set_state(S.IDLE, Reason.NO_SHIFT)
            else:
                self.set_state(S.PLANNED_STOP, Reason.BREAK)
            yield self.env.timeout(until - self.env.now)
            status, until = self.cal.at(self.env.now)
        self.cal_until = until

    def _take(self) -> Generator[simpy.Event, Any, int | None]:
        if self.inbuf is None:
            product = self.line.release()
            if product is None:
                self.set_state(S.IDLE, Reason.NO_ORDER)
                yield self.env.timeout(3600)
            return product
        while not self.inbuf.parts:
            if self.env.now >= self.cal_until:
                yield from self._obey_calendar()
                continue
            self.set_state(S.STARVED, Reason.UPSTREAM)
            yield self.inbuf.nonempty()  # also fired at calendar changes (Plant._calendar_waker)
        return self.inbuf.take()

    def _put(self, product: int) -> Proc:
        if self.outbuf is None:
            return
        while self.outbuf.full:
            if self.env.now >= self.cal_until:
                yield from self._obey_calendar()
                continue
            self.set_state(S.BLOCKED, Reason.DOWNSTREAM)
            yield self.outbuf.space()  # also fired at calendar changes
        self.outbuf.put(product)

    def _changeover(self, product: int) -> Proc:
        minutes = self.line.settings.changeover_min
        if self.product and minutes > 0:
            self.set_state(S.SETUP, Reason.CHANGEOVER)
            yield self.env.timeout(minutes * 60)
            self.startup_left = self.line.settings.startup_parts
        self.product = product
        self.logs.product.add(self.env.now, self.index, product)

    def _cycle_s(self) -> float:
        now = self.env.now
        if now >= self.next_reduced:
            self.reduced_until = now + self.rng.expovariate(
                1 / (self.p.reduced_speed_mean_min * 60)
            )
            self.next_reduced = self._draw_reduced_start(self.reduced_until)
        factor = self.plant.cycle_factor[self.product]
        ideal = self.p.ideal_cycle_s * factor
        cycle = self.base_cycle * factor * math.exp(self.rng.gauss(0.0, self.p.cycle_cv))
        if now < self.reduced_until:
            cycle /= self.p.reduced_speed_factor
        return max(cycle, ideal)  # never faster than ideal: performance cannot pass 100 %

    def _work(self) -> Proc:
        cycle = remaining = self._cycle_s()
        self.set_state(S.RUNNING)
        self.logs.cycle.add1(self.env.now, self.index, cycle)
        while remaining > 1e-9:
            step = min(remaining, self.to_small, self.to_fail, self.to_wear)
            yield self.env.timeout(step)
            remaining -= step
            self.to_small -= step
            self.to_fail -= step
            self.to_wear -= step
            if self.to_wear <= 1e-9:
                yield from self._breakdown(Reason.WEAR_OUT, self.p.wear_repair_min * 60)
                self.to_wear = self._new_wear_part()
            elif self.to_fail <= 1e-9:
                reason = SUDDEN[self.rng.randrange(len(SUDDEN))]
                yield from self._breakdown(reason, self.rng.gammavariate(2.0, self.p.mttr_min * 30))
                self.to_fail = self._draw_fail()
            elif self.to_small <= 1e-9:
                self.set_state(S.SMALL_STOP, Reason.MINOR_JAM)
                stop = min(self.rng.expovariate(1 / self.p.small_stop_mean_s), SMALL_STOP_MAX_S)
                yield self.env.timeout(stop)
                self.to_small = self._draw_small()
            else:
                continue
            if remaining > 1e-9:
                self.set_state(S.RUNNING)
                self.logs.cycle.add1(self.env.now, self.index, cycle)

    def _breakdown(self, reason: Reason, duration: float) -> Proc:
        start = self.env.now
        self.set_state(S.DOWN, reason)
        yield self.env.timeout(duration)
        self.plant.failures.append(
            Failure(self.index, start, self.env.now, reason, reason == Reason.WEAR_OUT)
        )

    def _judge(self) -> bool:
        p = self.reject_probability(self.env.now)
        startup = self.startup_left > 0
        if startup:
            p = max(p, self.line.settings.startup_reject_rate)
            self.startup_left -= 1
        good = self.rng.random() >= p
        flags = (PART_GOOD if good else 0) | (PART_STARTUP if startup else 0)
        self.logs.part.add2(self.env.now, self.index, flags, self.product)
        return good


class Plant:
    """The simulated plant of a scenario. Advance it with :meth:`run_until`.

    >>> from genba.sim import load_scenario
    >>> plant = Plant(load_scenario("demo"))
    >>> plant.run_until(3600.0)
    >>> plant.now_s
    3600.0
    """

    def __init__(self, scenario: Scenario, *, t0_ns: int | None = None) -> None:
        self.scenario = scenario
        if t0_ns is None:
            start = scenario.plant.start
            t0_ns = (
                int(start.timestamp()) * NS_PER_S
                if start
                else (time.time_ns() // (3600 * NS_PER_S)) * 3600 * NS_PER_S
            )
        self.t0_ns = t0_ns
        self.env = simpy.Environment()
        self.logs = Logs()
        self.failures: list[Failure] = []
        self.calendar = scenario.calendar()
        self.products = list(scenario.product)
        self.product_code = {p.name: i + 1 for i, p in enumerate(self.products)}
        self.cycle_factor = [1.0] + [p.cycle_factor for p in self.products]
        self.lines: list[Line] = []
        self.machines: list[Machine] = []
        for i, ls in enumerate(scenario.lines):
            line = Line(self, i, ls)
            self.lines.append(line)
            for j, ms in enumerate(ls.machine):
                self.machines.append(Machine(self, len(self.machines), line, j, ms))
        self.machine_index = {m.path: m.index for m in self.machines}
        self.env.process(self._calendar_waker())

    def _calendar_waker(self) -> Proc:
        """At every calendar change, wake the machines waiting on conveyors: one process for
        the plant instead of a timeout in every wait (a third of the events of a big plant)."""
        cursor = CalendarCursor(self.calendar, self.t0_ns)
        while True:
            _, until = cursor.at(self.env.now)
            yield self.env.timeout(until - self.env.now)
            for line in self.lines:
                for buffer in line.buffers:
                    buffer.wake()

    @property
    def now_s(self) -> float:
        return float(self.env.now)

    def run_until(self, t_s: float) -> None:
        """Simulate up to (not including) ``t_s`` seconds after the scenario start."""
        if t_s > self.env.now:
            self.env.run(until=t_s)

    def write_setpoint(self, machine_path: str, name: str, value: float) -> None:
        """Change a machine's setpoint (``temperature_sp`` in degC, ``speed_sp`` in %)."""
        m = self.machines[self.machine_index[machine_path]]
        if name == "speed_sp" and not 10.0 <= value <= 100.0:
            raise ValueError(f"speed_sp of {machine_path} must be 10..100 %, got {value}")
        if name == "temperature_sp" and not 0.0 <= value <= 150.0:
            raise ValueError(f"temperature_sp of {machine_path} must be 0..150 degC, got {value}")
        if name not in ("speed_sp", "temperature_sp"):
            raise ValueError(
                f"{machine_path} has no setpoint {name!r}; use temperature_sp or speed_sp"
            )
        m.write_setpoint(name, value)
