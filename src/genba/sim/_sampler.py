"""Sensor samples from what the model did: every machine and tag at each tick, vectorised.

For a time chunk, the logged events are spread onto a (ticks × machines) grid with one
``maximum.at`` and a running maximum (forward fill), and every sensor is then a numpy
expression over that grid. Noise comes from a counter-based hash of (tick, machine, signal),
and the lags are linear filters whose state carries over, so the samples do not depend on
how time is cut into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.sim._logs import PART_GOOD, Log
from genba.sim._plant import Plant
from genba.states import MachineState as S
from genba.types import NS_PER_S

F64 = npt.NDArray[np.float64]

# (name, unit, description) of each machine's tags, in the order of the value grid.
SIGNALS: list[tuple[str, str, str]] = [
    ("state", "1", "Machine state code (genba.states.MachineState)"),
    ("reason", "1", "Reason code of the state (docs/simulator.md)"),
    ("product", "1", "Code of the product being made"),
    ("speed", "1/min", "Cycles per minute of the running cycle"),
    ("speed_sp", "%", "Speed setpoint, share of rated speed (writable)"),
    ("motor_current", "A", "Main drive motor current"),
    ("temperature", "degC", "Drive bearing temperature"),
    ("process_temperature", "degC", "Process temperature, follows its setpoint"),
    ("temperature_sp", "degC", "Process temperature setpoint (writable)"),
    ("vibration", "mm/s", "Vibration velocity, RMS"),
    ("pressure", "bar", "Pneumatic supply pressure at the machine"),
    ("energy", "kWh", "Energy counter"),
    ("good_count", "1", "Good parts counter"),
    ("reject_count", "1", "Rejected parts counter"),
]
SIGNAL_INDEX = {name: i for i, (name, _, _) in enumerate(SIGNALS)}

_POWERED = np.zeros(16, dtype=bool)
_POWERED[[S.RUNNING, S.STARVED, S.BLOCKED, S.PLANNED_STOP, S.SETUP, S.SMALL_STOP]] = True


def _hash_normal(k: npt.NDArray[np.int64], m: npt.NDArray[np.int64], sig: int, seed: int) -> F64:
    """Standard normal noise that depends only on (tick, machine, signal, seed): splitmix64
    of the key, then Box–Muller."""
    x = (k.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        m.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
    )
    x ^= np.uint64((sig * 0x94D049BB133111EB + seed) & 0xFFFFFFFFFFFFFFFF)

    def mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    a = mix(x)
    b = mix(a + np.uint64(0x9E3779B97F4A7C15))
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    u2 = (b >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass
class _Carry:
    """What one chunk hands the next: the values at its end."""

    last: dict[str, F64]
    counts: F64  # (machines, 2): good, reject
    energy: F64
    run_s: F64  # running seconds since the start
    wear_base: F64  # run_s when the current wear part was fitted
    wear_life: F64
    temp: F64
    proc_temp: F64
    vib_noise: F64


class Sampler:
    """Turns the plant's logs into samples, one chunk of ticks at a time."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.rate_hz = plant.scenario.plant.sample_rate_hz
        self.period_ns = round(NS_PER_S / self.rate_hz)
        self.dt = self.period_ns / NS_PER_S
        n = len(plant.machines)
        self.n = n
        self.next_tick = 0
        self.seed = plant.scenario.plant.seed
        p = [m.p for m in plant.machines]
        self.rated_kw = np.array([x.rated_power_kw for x in p])
        self.ideal_s = np.array([x.ideal_cycle_s for x in p])
        self.warning_s = np.array([x.wear_warning_h * 3600 for x in p])
        self.cycle_factor = np.array(plant.cycle_factor)
        init_sp = np.array([[x.temperature_sp_c, x.speed_sp_pct] for x in p])
        self.carry = _Carry(
            last={
                "state": np.full(n, float(S.IDLE)),
                "reason": np.zeros(n),
                "product": np.zeros(n),
                "cycle": self.ideal_s.copy(),
                "temperature_sp": init_sp[:, 0].copy(),
                "speed_sp": init_sp[:, 1].copy(),
            },
            counts=np.zeros((n, 2)),
            energy=np.zeros(n),
            run_s=np.zeros(n),
            wear_base=np.zeros(n),
            wear_life=np.full(n, np.inf),
            temp=np.full(n, 25.0),
            proc_temp=np.full(n, 22.0),
            vib_noise=np.zeros(n),
        )
        # Energy counter at each whole minute, for the ground truth: {minute: (machines,)}.
        self.energy_at_minute: dict[int, F64] = {0: np.zeros(n)}

    def tick_time_s(self, k: npt.NDArray[np.int64]) -> F64:
        return k * self.period_ns / NS_PER_S

    def _index_grid(self, t: F64, m: npt.NDArray[np.int32], ticks: F64) -> npt.NDArray[np.int64]:
        """(ticks+1 × machines) index of the latest event shown at each tick, -1 for none.

        An event shows from the first tick at or after it; the extra last row holds events
        after the last tick (none, by how chunks are cut) so that row is the carry-over.
        """
        grid = np.full((len(ticks) + 1, self.n), -1, dtype=np.int64)
        np.maximum.at(grid, (np.searchsorted(ticks, t, "left"), m), np.arange(len(t)))
        return np.maximum.accumulate(grid, axis=0)

    @staticmethod
    def _pick(values: F64, idx: npt.NDArray[np.int64], carry: F64) -> tuple[F64, F64]:
        """Values by index grid, the carry where there is no event; and the last row."""
        if len(values) == 0:
            filled = np.broadcast_to(carry, idx.shape).astype(np.float64)
        else:
            filled = np.where(idx >= 0, values[np.maximum(idx, 0)], carry[None, :])
        return filled[:-1], filled[-1].copy()

    def _fill(self, log: Log, rows: slice, col: int, ticks: F64, init: F64) -> tuple[F64, F64]:
        """(ticks × machines) grid of a logged value, forward-filled; and its value at the end."""
        t, m, vals = log.columns(rows)
        return self._pick(vals[col], self._index_grid(t, m, ticks), init)

    def chunk(self, end_s: float) -> tuple[npt.NDArray[np.int64], F64]:
        """Samples of every tick before ``end_s`` not sampled yet.

        Returns tick indices ``k`` (time = k × period) and values shaped
        (ticks, machines, len(SIGNALS)). The plant must have run up to ``end_s``.
        """
        k0 = self.next_tick
        k1 = int(np.ceil(end_s * NS_PER_S / self.period_ns - 1e-9))
        if k1 <= k0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.n, len(SIGNALS)))
        ks = np.arange(k0, k1, dtype=np.int64)
        ticks = self.tick_time_s(ks)
        a, b = float(ticks[0]), float(ticks[-1]) + 1e-9  # events up to the last tick, inclusive
        if k0 > 0:
            a = float(self.tick_time_s(np.array([k0 - 1]))[0]) + 1e-9
        logs, c = self.plant.logs, self.carry
        last = c.last
        rows = logs.state.span(a, b)
        state, last["state"] = self._fill(logs.state, rows, 0, ticks, last["state"])
        reason, last["reason"] = self._fill(logs.state, rows, 1, ticks, last["reason"])
        rows = logs.product.span(a, b)
        product, last["product"] = self._fill(logs.product, rows, 0, ticks, last["product"])
        rows = logs.cycle.span(a, b)
        cycle, last["cycle"] = self._fill(logs.cycle, rows, 0, ticks, last["cycle"])
        rows = logs.setpoint.span(a, b)
        temp_sp, last["temperature_sp"] = self._fill(
            logs.setpoint, rows, 0, ticks, last["temperature_sp"]
        )
        speed_sp, last["speed_sp"] = self._fill(logs.setpoint, rows, 1, ticks, last["speed_sp"])

        st = state.astype(np.int64)
        running = st == S.RUNNING
        powered = _POWERED[st]
        ideal = self.ideal_s[None, :] * self.cycle_factor[product.astype(np.int64)]
        load = np.where(running, ideal / cycle, 0.0)
        speed = np.where(running, 60.0 / cycle, 0.0)

        # Counters: parts completed up to each tick.
        t, m, (flags, _) = logs.part.columns(logs.part.span(a, b))
        inc = np.zeros((len(ks) + 1, self.n, 2))
        kk = np.searchsorted(ticks, t, "left")
        good = (flags.astype(np.int64) & PART_GOOD) > 0
        np.add.at(inc, (kk, m, np.where(good, 0, 1)), 1.0)
        counts = c.counts[None, :, :] + np.cumsum(inc[:-1], axis=0)
        c.counts = c.counts + inc.sum(axis=0)

        # Wear: running seconds since the current part was fitted, against its life.
        run_s = c.run_s[None, :] + np.cumsum(running, axis=0) * self.dt
        t_w, m_w, (life,) = logs.wear.columns(logs.wear.span(a, b))
        idx = self._index_grid(t_w, m_w, ticks)
        run_ext = np.vstack([run_s, run_s[-1:]])
        fitted_at = run_ext[np.searchsorted(ticks, t_w, "left"), m_w]
        base, c.wear_base = self._pick(fitted_at, idx, c.wear_base)
        lives, c.wear_life = self._pick(life, idx, c.wear_life)
        c.run_s = run_s[-1]
        used = run_s - base
        w = self.warning_s[None, :]
        # Drift grows as the square of the share of the warning window used up.
        with np.errstate(invalid="ignore"):
            share = np.clip((used - (lives - w)) / np.maximum(w, 1e-9), 0.0, 1.0)
        drift = np.where(w > 0, share, 0.0) ** 2

        # Noise and first-order lags (filters carry their state from chunk to chunk).
        kg, mg = np.meshgrid(ks, np.arange(self.n, dtype=np.int64), indexing="ij")

        def noise(sig: int) -> F64:
            return _hash_normal(kg, mg, sig, self.seed)

        def lag(x: F64, y0: F64, tau_s: float) -> tuple[F64, F64]:
            # imported here: scipy.signal takes ~1 s to import, and every CLI command that
            # loads the node (genba import, query, kpi) would pay it without simulating
            from scipy.signal import lfilter

            alpha = 1.0 - np.exp(-self.dt / tau_s)
            y, _ = lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=((1 - alpha) * y0)[None, :])
            return y, y[-1]

        temp, c.temp = lag(25.0 + 30.0 * load + 25.0 * drift, c.temp, 1200.0)
        proc_target = np.where(powered, temp_sp, 22.0)
        proc_temp, c.proc_temp = lag(proc_target, c.proc_temp, 300.0)
        beta = np.exp(-self.dt / 30.0)  # vibration noise correlated over ~30 s
        vib_n, c.vib_noise = lag(noise(1) * np.sqrt((1 + beta) / (1 - beta)), c.vib_noise, 30.0)
        vibration = np.where(
            powered,
            0.4 + 2.2 * load + 7.0 * drift * (0.4 + load) + 0.12 * vib_n,
            0.05 + 0.01 * np.abs(noise(2)),
        )
        amps_full = self.rated_kw * 1000 / (np.sqrt(3) * 400 * 0.85)  # 400 V, cos phi 0.85
        current = np.where(
            powered,
            amps_full[None, :] * (0.18 + 0.8 * load * (1 + 0.15 * drift)) + 0.15 * noise(3),
            0.0,
        )
        power_kw = self.rated_kw[None, :] * np.where(
            st == S.IDLE, 0.03, np.where(powered, 0.2 + 0.8 * load * (1 + 0.1 * drift), 0.05)
        )
        energy = c.energy[None, :] + np.cumsum(power_kw, axis=0) * (self.dt / 3600)
        c.energy = energy[-1]
        pressure = np.where(powered, 6.0 - 0.4 * load + 0.04 * noise(4), 0.0)
        temp = temp + 0.1 * noise(5)
        proc_temp = proc_temp + 0.15 * noise(6)
        self._keep_energy_minutes(ks, energy)

        grid = np.stack(
            [state, reason, product, speed, speed_sp, current, temp, proc_temp, temp_sp,
             vibration, pressure, energy, counts[..., 0], counts[..., 1]],
            axis=-1,
        )  # fmt: skip
        self.next_tick = k1
        return ks, grid

    def _keep_energy_minutes(self, ks: npt.NDArray[np.int64], energy: F64) -> None:
        per_min = round(60 * NS_PER_S / self.period_ns)
        if per_min <= 0 or 60 * NS_PER_S % self.period_ns:
            return
        # The counter at tick k covers power up to and including tick k: the minute mark
        # m is reached after the tick just before m × 60 s.
        marks = np.flatnonzero((ks + 1) % per_min == 0)
        for i in marks:
            self.energy_at_minute[int((ks[i] + 1) // per_min)] = energy[i].copy()
