"""Read the signals of machines from the store and turn them into timelines and counts.

One :meth:`~genba.store.Store.runs` query per tag; everything after is numpy over whole
arrays. The tags of a machine are named by its ``[machine.signals]`` (docs/kpi.md); a missing
one is a :class:`~genba.errors.QueryError` naming the setting to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.config import GenbaConfig, MachineSettings
from genba.errors import QueryError
from genba.kpi._timeline import (
    Counts,
    Energy,
    States,
    apply_operator_reasons,
    counter_increments,
    rules_state,
    startup_mask,
    state_at,
    track_states,
)
from genba.states import MachineState as S
from genba.store import Runs, Store, TimeRange
from genba.tags import TagRegistry
from genba.types import Quality

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
NS = 1_000_000_000
OPERATOR_REASON = "downtime_reason"
"""Tag (under each machine) holding reasons entered by operators, at the stop's start."""
DEFAULT_SMALL_STOP_S = 300.0


@dataclass(frozen=True)
class Loaded:
    """Timelines of a group of machines over one span, ready for :func:`compute`."""

    machines: list[MachineSettings]
    states: States
    counts: Counts
    energy: Energy
    unattributed: F64
    """Parts per machine counted across a data gap (not placed in time)."""


class SignalReader:
    """Reads one machine's signal tags over a span as runs of one value (a state that holds
    for an hour is one row)."""

    def __init__(self, store: Store, registry: TagRegistry) -> None:
        self.store = store
        self.registry = registry

    def _tag(self, machine: MachineSettings, name: str, setting: str) -> int | None:
        path = f"{machine.path}/{name}"
        if path in self.registry:
            return self.registry.get(path).id
        if setting == OPERATOR_REASON:
            return None
        raise QueryError(
            f"Unknown tag '{path}': [machine.signals] {setting} of {machine.path} names "
            f"{name!r}; set it to one of that machine's tags (`genba tags -p "
            f"'{machine.path}/#'`), or to '' if it has none."
        )

    def runs(
        self, machine: MachineSettings, name: str, setting: str, span: TimeRange
    ) -> Runs | None:
        """Runs of ``machine``'s tag ``name`` (not BAD), or None when ``name`` is ''."""
        if not name:
            return None
        tag = self._tag(machine, name, setting)
        if tag is None:
            return None
        return self.store.runs(tag, span, max_gap_ns=int(machine.signals.max_gap_s * NS))

    def samples(self, machine: MachineSettings, name: str, span: TimeRange) -> tuple[I64, F64]:
        """Every sample of an optional tag (operator entries: each one counts)."""
        tag = self._tag(machine, name, OPERATOR_REASON)
        if tag is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        b = self.store.raw([tag], span)
        ok = b.quality < Quality.BAD
        return b.ts_ns[ok], b.values[ok]


def _product_index(config: GenbaConfig) -> dict[int, int]:
    return {p.code: i + 1 for i, p in enumerate(config.product)}


def ideal_cycles(config: GenbaConfig, machines: list[MachineSettings]) -> F64:
    """``[m, k]``: ideal cycle of machine m for product index k (0: unknown product)."""
    factors = [1.0] + [p.cycle_factor for p in config.product]
    out = np.zeros((len(machines), len(factors)))
    for i, m in enumerate(machines):
        if m.ideal_cycle_time_s is None:
            raise QueryError(
                f"machine {m.path} has no ideal_cycle_time_s; set it in its [[machine]] to "
                "compute performance and OEE"
            )
        out[i] = np.array(factors) * m.ideal_cycle_time_s
        for j, p in enumerate(config.product):
            if p.name in m.ideal_cycle_time_s_by_product:
                out[i, j + 1] = m.ideal_cycle_time_s_by_product[p.name]
    return out


def _machine_states(
    reader: SignalReader, m: MachineSettings, i: int, span: TimeRange
) -> tuple[States, Runs | None]:
    """State runs of machine ``m`` (index ``i``) over ``span``, and its reason runs."""
    sig = m.signals
    gap = int(sig.max_gap_s * NS)
    wide = TimeRange(span.start_ns - gap, span.end_ns)
    small = sig.small_stop_s
    if small is None:
        small = DEFAULT_SMALL_STOP_S if sig.mode == "rules" else 0.0
    if sig.mode == "rules":
        state_runs = _rules(
            reader.runs(m, sig.run_tag, "run_tag", wide),
            reader.runs(m, sig.speed_tag, "speed_tag", wide),
            sig.min_speed,
        )
    else:
        st = reader.runs(m, sig.state_tag, "state_tag", wide)
        assert st is not None
        mapped = _lookup(m, st.values, sig.code_map(), "state code", _state_fix)
        state_runs = Runs(st.start_ns, st.last_ns, mapped)
    reason = reader.runs(m, sig.reason_tag, "reason_tag", wide)
    if reason is not None:
        state_runs = _split_at(state_runs, reason.start_ns, gap)
    ts = state_runs.start_ns
    states = track_states(
        ts,
        state_runs.values,
        _at(reason, ts),
        span=(span.start_ns, span.end_ns),
        max_gap_ns=gap,
        last_ns=state_runs.last_ns,
        debounce_ns=int(sig.debounce_s * NS),
        small_stop_ns=int(small * NS),
        machine=i,
    )
    entered = reader.samples(m, OPERATOR_REASON, span)
    return apply_operator_reasons(states, *entered), reason


def load_states(reader: SignalReader, machines: list[MachineSettings], span: TimeRange) -> States:
    """Only the state runs of ``machines`` (for timelines and stop lists: no counters read)."""
    return States.concat([_machine_states(reader, m, i, span)[0] for i, m in enumerate(machines)])


def load(
    config: GenbaConfig,
    reader: SignalReader,
    machines: list[MachineSettings],
    span: TimeRange,
) -> Loaded:
    """States, counts and energy of ``machines`` over ``span``."""
    products = _product_index(config)
    ideal = ideal_cycles(config, machines)
    parts_s, parts_c, parts_e = [], [], []
    unattributed = np.zeros(len(machines))
    for i, m in enumerate(machines):
        sig = m.signals
        gap = int(sig.max_gap_s * NS)
        states, _ = _machine_states(reader, m, i, span)
        parts_s.append(states)
        # A counter sample at the end counts the parts of the span's last interval.
        to_end = TimeRange(span.start_ns - gap, span.end_ns + 1)
        product = reader.runs(m, sig.product_tag, "product_tag", to_end)
        fastest = float(ideal[i].min())
        counts, lost = _counts(m, reader, states, product, products, to_end, span, gap, i, fastest)
        parts_c.append(counts)
        unattributed[i] = lost
        if sig.energy_tag:
            parts_e.append(_energy(m, reader, states, to_end, span, gap, i))
    return Loaded(
        machines,
        States.concat(parts_s),
        Counts.concat(parts_c),
        Energy.concat(parts_e),
        unattributed,
    )


def _at(series: Runs | None, ts: I64) -> F64 | None:
    """The value of ``series`` at each time (the run holding it; NaN before any)."""
    if series is None:
        return None
    t, v = series.start_ns, series.values
    idx = np.searchsorted(t, ts, "right") - 1
    return np.where(idx >= 0, v[np.maximum(idx, 0)] if len(v) else np.nan, np.nan)


def _lookup(
    m: MachineSettings,
    values: F64,
    table: dict[int, int],
    what: str,
    fix: Callable[[str], str],
    *,
    none: float | None = None,
) -> F64:
    """``values`` (codes a machine sends) mapped through ``table``; NaN stays NaN, and the
    code ``none`` (if given) means "nothing" and gives NaN too. Any other code the table
    lacks is a QueryError naming it and the line to add (``fix(code)``)."""
    keys = np.array(sorted(table), dtype=np.float64)
    vals = np.array([table[int(k)] for k in keys], dtype=np.float64)
    idx = np.clip(np.searchsorted(keys, values), 0, len(keys) - 1)
    known = keys[idx] == values
    bad = ~known & ~np.isnan(values) & (values != none if none is not None else True)
    if bad.any():
        code = f"{values[bad][0]:g}"
        raise QueryError(f"machine {m.path} reports {what} {code}, which {fix(code)}")
    return np.where(known, vals[idx], np.nan)


def _state_fix(code: str) -> str:
    return (
        "[machine.signals] state_codes does not map; add it, e.g. "
        f'state_codes = {{ "{code}" = "down" }}'
    )


def _product_fix(code: str) -> str:
    return f"no [[product]] has; add a [[product]] with code = {code}"


def _increments(
    series: Runs | None,
    counter_max: int,
    span: TimeRange,
    gap: int,
    fastest_s: float | None = None,
) -> tuple[I64, F64, float]:
    """(time, parts) of each counter step inside ``span``, and the parts not placed: counted
    across a gap, or more than the machine can make in the time (at twice its fastest
    cycle ``fastest_s``, plus two: a counter that jumped, not parts)."""
    if series is None or len(series) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0), 0.0
    inc = counter_increments(series.values, counter_max=counter_max)
    at = series.start_ns[1:] - 1
    inside = (at >= span.start_ns) & (at < span.end_ns) & (inc != 0)
    dt = series.start_ns[1:] - series.last_ns[:-1]
    bad = dt > gap
    if fastest_s is not None:
        bad |= inc > 2.0 * dt / NS / fastest_s + 2.0
    lost = float(inc[inside & bad].sum())
    keep = inside & ~bad
    return at[keep], inc[keep], lost


def _rules(run: Runs | None, speed: Runs | None, min_speed: float) -> Runs:
    """Rules mode: the state at every change of either signal; a run lasts as long as the
    primary signal (run_tag, else speed_tag) has no gap."""
    primary = run if run is not None else speed
    assert primary is not None  # validated: rules mode has one of them
    starts = np.unique(np.concatenate([r.start_ns for r in (run, speed) if r is not None]))
    idx = np.searchsorted(primary.start_ns, starts, "right") - 1
    last = np.where(idx >= 0, primary.last_ns[np.maximum(idx, 0)], starts)
    state = rules_state(_at(run, starts), _at(speed, starts), min_speed)
    return Runs(starts, np.maximum(last, starts), state)


def _split_at(runs: Runs, times: I64, gap: int) -> Runs:
    """``runs`` also cut where another signal changes (a reason code set during a stop), so
    each piece can carry that signal's value; times in a gap of ``runs`` are left out."""
    pts = np.union1d(runs.start_ns, times)
    idx = np.searchsorted(runs.start_ns, pts, "right") - 1
    ok = idx >= 0
    pts, idx = pts[ok], idx[ok]
    last = runs.last_ns[idx]
    ok = pts <= last + gap
    pts, idx = pts[ok], idx[ok]
    return Runs(pts, np.maximum(runs.last_ns[idx], pts), runs.values[idx])


def _counts(
    m: MachineSettings,
    reader: SignalReader,
    states: States,
    product: Runs | None,
    products: dict[int, int],
    wide: TimeRange,
    span: TimeRange,
    gap: int,
    i: int,
    fastest_s: float,
) -> tuple[Counts, float]:
    sig = m.signals
    g_t, g_n, g_lost = _increments(
        reader.runs(m, sig.good_count_tag, "good_count_tag", wide),
        sig.counter_max,
        span,
        gap,
        fastest_s,
    )
    r_t, r_n, r_lost = _increments(
        reader.runs(m, sig.reject_count_tag, "reject_count_tag", wide),
        sig.counter_max,
        span,
        gap,
        fastest_s,
    )
    ts = np.concatenate([g_t, r_t])
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    good = np.concatenate([g_n, np.zeros(len(r_n))])[order]
    reject = np.concatenate([np.zeros(len(g_n)), r_n])[order]
    codes = _at(product, ts)
    if codes is None or not products:
        pidx = np.zeros(len(ts), dtype=np.int32)
    else:
        idx = _lookup(m, codes, products, "product code", _product_fix, none=0.0)
        pidx = np.nan_to_num(idx).astype(np.int32)  # 0: no product known
    startup = startup_mask(states, ts, good + reject, sig.startup_parts)
    counts = Counts(np.full(len(ts), i, dtype=np.int32), ts, pidx, good, reject, reject * startup)
    return counts, g_lost + r_lost


def _energy(
    m: MachineSettings,
    reader: SignalReader,
    states: States,
    wide: TimeRange,
    span: TimeRange,
    gap: int,
    i: int,
) -> Energy:
    t, kwh, _ = _increments(reader.runs(m, m.signals.energy_tag, "energy_tag", wide), 0, span, gap)
    producing = state_at(states, t) == S.RUNNING
    return Energy(np.full(len(t), i, dtype=np.int32), t, kwh, producing)
