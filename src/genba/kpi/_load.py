"""Read the signals of machines from the store and turn them into timelines and counts.

One :meth:`~genba.historian.Store.runs` query per tag, plus the last sample before the span (a
report-by-exception source may have sent its state hours earlier); everything after is numpy
over whole arrays. BAD samples are stale marks: unknown time until the next sample. The tags
of a machine are named by its ``[machine.signals]`` (docs/kpi.md); a missing state or count
tag is a :class:`~genba.errors.QueryError` naming the setting to change, a missing optional
one (reason, product, energy) is simply not there unless the config names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.config import GenbaConfig, MachineSettings, SignalSettings
from genba.errors import QueryError
from genba.historian import Runs, Store, TimeRange, last_before, runs_of, value_at
from genba.kpi._timeline import (
    UNKNOWN,
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
from genba.states import STATE_NAMES
from genba.states import MachineState as S
from genba.tags import TagRegistry
from genba.types import NS_PER_S, Quality, SampleBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
NO_GAP = 2**62
"""``max_gap_ns`` for a store's runs when samples hold until the next (no gap limit)."""
OPTIONAL = ("reason_tag", "product_tag", "energy_tag")
"""Signals a machine may lack: with their default names, a missing tag means no signal."""
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
    """Parts per machine counted across unknown time or while the state was unknown (not
    placed in time, never in performance)."""
    not_counted: dict[int, str]
    """Machines (by index) that could not be counted, and why: the rest of the line is."""


STATE_SETTINGS = ("state_tag", "run_tag", "speed_tag", "reason_tag")
"""The signals that make a machine's state timeline."""
SIGNAL_SETTINGS = (
    *STATE_SETTINGS,
    "product_tag",
    "good_count_tag",
    "reject_count_tag",
    "energy_tag",
)
"""Every signal a machine's KPIs may read."""


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
        if setting in OPTIONAL and setting not in machine.signals.model_fields_set:
            return None  # the default name, and this machine has no such tag: no signal
        raise QueryError(
            f"Unknown tag '{path}': [machine.signals] {setting} of {machine.path} names "
            f"{name!r}; set it to one of that machine's tags (`genba tags -p "
            f"'{machine.path}/#'`)" + (", or to '' if it has none." if setting in OPTIONAL else ".")
        )

    def prefetch(
        self,
        machines: list[MachineSettings],
        span: TimeRange,
        signals: tuple[str, ...] = SIGNAL_SETTINGS,
    ) -> SignalReader:
        """A reader that answers for the ``signals`` of ``machines`` over ``span`` (and the
        instant after, where counters end) from one read of the store and one of the tags'
        last samples before it: a line of ten machines is a few queries, not ninety."""
        tags: list[int] = []
        for m in machines:
            for name, setting in _signal_names(m.signals, signals):
                try:
                    tag = self._tag(m, name, setting)
                except QueryError:
                    continue  # asked again when the machine is loaded, and reported there
                if tag is not None:
                    tags.append(tag)
        return _Prefetched(self, sorted(set(tags)), TimeRange(span.start_ns, span.end_ns + 1))

    # what one signal costs: overridden by a prefetched reader
    def _runs(self, tag: int, span: TimeRange, gap_ns: int) -> Runs:
        return self.store.runs(tag, span, max_gap_ns=gap_ns)

    def _before(self, tag: int, t_ns: int) -> tuple[int, float] | None:
        return last_before(self.store, tag, t_ns)

    def _raw(self, tag: int, span: TimeRange) -> tuple[I64, F64]:
        b = self.store.raw([tag], span)
        ok = b.quality < Quality.BAD
        return b.ts_ns[ok], b.values[ok]

    def runs(
        self, machine: MachineSettings, name: str, setting: str, span: TimeRange
    ) -> Runs | None:
        """Runs of ``machine``'s tag ``name`` over ``span``, led by the last sample before it
        (BAD samples as NaN: stale); None when ``name`` is '' or an optional tag is absent."""
        if not name:
            return None
        tag = self._tag(machine, name, setting)
        if tag is None:
            return None
        gap = machine.signals.max_gap_s
        runs = self._runs(tag, span, NO_GAP if gap is None else int(gap * NS_PER_S))
        if len(runs) and runs.start_ns[0] == span.start_ns:
            return runs
        before = self._before(tag, span.start_ns)
        if before is None:
            return runs
        t, v = before
        return Runs(
            np.concatenate([[t], runs.start_ns]).astype(np.int64),
            np.concatenate([[t], runs.last_ns]).astype(np.int64),
            np.concatenate([[v], runs.values]),
        )

    def samples(self, machine: MachineSettings, name: str, span: TimeRange) -> tuple[I64, F64]:
        """Every good sample of an optional tag (operator entries: each one counts)."""
        tag = self._tag(machine, name, OPERATOR_REASON)
        if tag is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return self._raw(tag, span)


def _signal_names(sig: SignalSettings, signals: tuple[str, ...]) -> list[tuple[str, str]]:
    """(tag name, setting) of the ``signals`` of a machine (and its operators' reasons)."""
    names = [(getattr(sig, s), s) for s in signals] + [(OPERATOR_REASON, OPERATOR_REASON)]
    return [(n, s) for n, s in names if n]


class _Prefetched(SignalReader):
    """A :class:`SignalReader` holding ``tags`` over ``span`` in memory, grouped by tag
    (BAD samples as NaN); anything else it reads from the store as usual."""

    def __init__(self, reader: SignalReader, tags: list[int], span: TimeRange) -> None:
        super().__init__(reader.store, reader.registry)
        self.span = span
        b = self.store.raw_by_tag(tags, span) if tags else SampleBatch.empty()
        self._ts = b.ts_ns
        self._values = np.where(b.quality >= Quality.BAD, np.nan, b.values)
        lo = np.searchsorted(b.tag_ids, tags, "left")
        hi = np.searchsorted(b.tag_ids, tags, "right")
        self._bounds = {t: (int(a), int(z)) for t, a, z in zip(tags, lo, hi, strict=True)}
        last = value_at(self.store, tags, span.start_ns - 1, good_only=False) if tags else None
        self._last: dict[int, tuple[int, float]] = {}
        if last is not None:
            bad = last.quality >= Quality.BAD
            vals = np.where(bad, np.nan, last.values)
            for t, ts, v in zip(
                last.tag_ids.tolist(), last.ts_ns.tolist(), vals.tolist(), strict=True
            ):
                self._last[t] = (ts, v)

    def _slice(self, tag: int, span: TimeRange) -> tuple[I64, F64] | None:
        if tag not in self._bounds or span.start_ns < self.span.start_ns:
            return None
        if span.end_ns > self.span.end_ns:
            return None
        a, z = self._bounds[tag]
        ts = self._ts[a:z]
        i, j = np.searchsorted(ts, [span.start_ns, span.end_ns], "left")
        return ts[i:j], self._values[a:z][i:j]

    def _runs(self, tag: int, span: TimeRange, gap_ns: int) -> Runs:
        got = self._slice(tag, span)
        if got is None:
            return super()._runs(tag, span, gap_ns)
        return runs_of(got[0], got[1], gap_ns)

    def _before(self, tag: int, t_ns: int) -> tuple[int, float] | None:
        if tag not in self._bounds or t_ns != self.span.start_ns:
            return super()._before(tag, t_ns)
        return self._last.get(tag)

    def _raw(self, tag: int, span: TimeRange) -> tuple[I64, F64]:
        got = self._slice(tag, span)
        if got is None:
            return super()._raw(tag, span)
        ok = ~np.isnan(got[1])
        return got[0][ok], got[1][ok]


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


def _gap_ns(m: MachineSettings) -> int | None:
    return None if m.signals.max_gap_s is None else int(m.signals.max_gap_s * NS_PER_S)


def _machine_states(
    reader: SignalReader, m: MachineSettings, i: int, span: TimeRange, until_ns: int | None
) -> tuple[States, Runs | None]:
    """State runs of machine ``m`` (index ``i``) over ``span``, and its reason runs."""
    sig = m.signals
    gap = _gap_ns(m)
    small = sig.small_stop_s
    if small is None:
        small = DEFAULT_SMALL_STOP_S if sig.mode == "rules" else 0.0
    if sig.mode == "rules":
        state_runs = _rules(
            reader.runs(m, sig.run_tag, "run_tag", span),
            reader.runs(m, sig.speed_tag, "speed_tag", span),
            sig.min_speed,
        )
    else:
        st = reader.runs(m, sig.state_tag, "state_tag", span)
        assert st is not None
        mapped = _lookup(m, st.values, sig.code_map(), "state code", _state_fix(sig))
        state_runs = Runs(st.start_ns, st.last_ns, mapped)
    reason = reader.runs(m, sig.reason_tag, "reason_tag", span)
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
        until_ns=until_ns,
        debounce_ns=int(sig.debounce_s * NS_PER_S),
        small_stop_ns=int(small * NS_PER_S),
        machine=i,
    )
    entered = reader.samples(m, OPERATOR_REASON, span)
    return apply_operator_reasons(states, *entered), reason


def _unknown_states(i: int, span: TimeRange) -> States:
    """A machine that could not be read: all of ``span`` unknown."""
    one = np.ones(1, dtype=np.int64)
    return States(
        np.full(1, i, dtype=np.int32),
        one * span.start_ns,
        one * span.end_ns,
        np.zeros(1, dtype=np.int8),
        np.zeros(1, dtype=np.int32),
        np.zeros(1, dtype=bool),
    )


def load_states(
    reader: SignalReader,
    machines: list[MachineSettings],
    span: TimeRange,
    until_ns: int | None = None,
    not_counted: dict[int, str] | None = None,
) -> States:
    """Only the state runs of ``machines`` (for timelines and stop lists: no counters read).
    A machine that cannot be read is all unknown, and why goes into ``not_counted``."""
    parts = []
    for i, m in enumerate(machines):
        try:
            parts.append(_machine_states(reader, m, i, span, until_ns)[0])
        except QueryError as e:
            if not_counted is None:
                raise
            not_counted[i] = str(e)
            parts.append(_unknown_states(i, span))
    return States.concat(parts)


def load(
    config: GenbaConfig,
    reader: SignalReader,
    machines: list[MachineSettings],
    span: TimeRange,
    until_ns: int | None = None,
) -> Loaded:
    """States, counts and energy of ``machines`` over ``span``. A machine that cannot be
    counted (no data, a code nobody mapped) is left out — all its time unknown — and listed
    in ``not_counted`` with the reason; the others are counted."""
    products = _product_index(config)
    ideal = ideal_cycles(config, machines)
    parts_s, parts_c, parts_e = [], [], []
    unattributed = np.zeros(len(machines))
    not_counted: dict[int, str] = {}
    for i, m in enumerate(machines):
        try:
            states, counts, energy, lost = _machine(
                m, i, reader, span, until_ns, products, float(ideal[i].min())
            )
        except QueryError as e:
            not_counted[i] = str(e)
            parts_s.append(_unknown_states(i, span))
            continue
        parts_s.append(states)
        parts_c.append(counts)
        unattributed[i] = lost
        if energy is not None:
            parts_e.append(energy)
    return Loaded(
        machines,
        States.concat(parts_s),
        Counts.concat(parts_c),
        Energy.concat(parts_e),
        unattributed,
        not_counted,
    )


def _machine(
    m: MachineSettings,
    i: int,
    reader: SignalReader,
    span: TimeRange,
    until_ns: int | None,
    products: dict[int, int],
    fastest: float,
) -> tuple[States, Counts, Energy | None, float]:
    """One machine's states, counts (parts in unknown time taken out) and energy, and the
    parts not attributed."""
    sig = m.signals
    gap = _gap_ns(m)
    states, _ = _machine_states(reader, m, i, span, until_ns)
    # A counter sample at the end counts the parts of the span's last interval.
    to_end = TimeRange(span.start_ns, span.end_ns + 1)
    product = reader.runs(m, sig.product_tag, "product_tag", to_end)
    counts, lost = _counts(m, reader, states, product, products, to_end, span, gap, i, fastest)
    # Parts counted while nobody knows the state never count toward performance.
    blind = _nothing if _all_known(states, span) else state_at(states, counts.ts_ns) == UNKNOWN
    if blind.any():
        lost += float((counts.good[blind] + counts.reject[blind]).sum())
        counts = counts.take(~blind)
    energy = None
    if sig.energy_tag and (e := reader.runs(m, sig.energy_tag, "energy_tag", to_end)) is not None:
        energy = _energy(e, states, span, gap, i)
    return states, counts, energy, lost


_nothing = np.zeros(0, dtype=bool)


def _all_known(states: States, span: TimeRange) -> bool:
    """Whether one machine's runs cover ``span`` without a gap or an unknown state."""
    st, a, z = states.state, states.start_ns, states.end_ns
    return bool(
        len(st)
        and a[0] <= span.start_ns
        and z[-1] >= span.end_ns
        and not (st == UNKNOWN).any()
        and np.array_equal(a[1:], z[:-1])
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


def _state_fix(sig: SignalSettings) -> Callable[[str], str]:
    """The hint for an unmapped state code: the whole map to write, since a map replaces
    genba's default codes (a hint of one entry would turn every other code unknown)."""
    current = sig.state_codes or {str(int(s)): name for s, name in zip(S, STATE_NAMES, strict=True)}

    def fix(code: str) -> str:
        entries = ", ".join(f'"{k}" = "{v}"' for k, v in current.items())
        return (
            "[machine.signals] state_codes does not map; state_codes replaces genba's codes, "
            f"so give the whole map with a state for {code} (one of {', '.join(STATE_NAMES)}), "
            f'e.g. state_codes = {{ {entries}, "{code}" = "down" }}'
        )

    return fix


def _product_fix(code: str) -> str:
    return f"no [[product]] has; add a [[product]] with code = {code}"


def _increments(
    series: Runs | None,
    counter_max: int,
    span: TimeRange,
    gap: int | None,
    fastest_s: float | None = None,
) -> tuple[I64, F64, float]:
    """(time, parts) of each counter step inside ``span``, and the parts not placed: counted
    across unknown time (a stale mark between the two samples, or more than ``gap`` apart),
    or more than the machine can make in the time (at twice its fastest cycle ``fastest_s``,
    plus two: a counter that jumped, not parts)."""
    if series is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0), 0.0
    ok = np.flatnonzero(~np.isnan(series.values))
    if len(ok) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0), 0.0
    start, last = series.start_ns[ok], series.last_ns[ok]
    inc = counter_increments(series.values[ok], counter_max=counter_max)
    at = start[1:] - 1
    inside = (at >= span.start_ns) & (at < span.end_ns) & (inc != 0)
    dt = start[1:] - last[:-1]
    bad = np.diff(ok) > 1  # a stale mark between them
    if gap is not None:
        bad |= dt > gap
    if fastest_s is not None:
        bad |= inc > 2.0 * dt / NS_PER_S / fastest_s + 2.0
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


def _split_at(runs: Runs, times: I64, gap: int | None) -> Runs:
    """``runs`` also cut where another signal changes (a reason code set during a stop), so
    each piece can carry that signal's value; times in a gap of ``runs`` are left out."""
    pts = np.sort(np.concatenate([runs.start_ns, times]), kind="stable")  # merges two sorted
    first = np.ones(len(pts), dtype=bool)
    first[1:] = pts[1:] != pts[:-1]
    pts = pts[first]
    idx = np.searchsorted(runs.start_ns, pts, "right") - 1
    ok = idx >= 0
    pts, idx = pts[ok], idx[ok]
    if gap is not None:
        ok = pts <= runs.last_ns[idx] + gap
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
    gap: int | None,
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
    new = np.r_[True, ts[1:] != ts[:-1]]
    if not new.all():  # both counters sampled at once (one scan): one event
        event = np.cumsum(new) - 1
        ts, good, reject = ts[new], np.bincount(event, good), np.bincount(event, reject)
    codes = _at(product, ts)
    if codes is None or not products:
        pidx = np.zeros(len(ts), dtype=np.int32)
    else:
        idx = _lookup(m, codes, products, "product code", _product_fix, none=0.0)
        pidx = np.nan_to_num(idx).astype(np.int32)  # 0: no product known
    startup = startup_mask(states, ts, good + reject, sig.startup_parts)
    counts = Counts(np.full(len(ts), i, dtype=np.int32), ts, pidx, good, reject, reject * startup)
    return counts, g_lost + r_lost


def _energy(series: Runs, states: States, span: TimeRange, gap: int | None, i: int) -> Energy:
    t, kwh, _ = _increments(series, 0, span, gap)
    producing = state_at(states, t) == S.RUNNING
    return Energy(np.full(len(t), i, dtype=np.int32), t, kwh, producing)
