"""KPIs as people ask for them: an asset (site, area, line or machine), a range, a grouping.

The API, the CLI and the report all answer through :class:`Kpi`, so they cannot drift
apart. Every row names its entity (a machine, a line, or the asset above them) and period.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.calendar import OFF, WORK, ShiftCalendar
from genba.clock import Clock
from genba.config import GenbaConfig, MachineSettings, ReasonSettings
from genba.errors import QueryError
from genba.historian import Store, TimeRange
from genba.kpi import _metrics
from genba.kpi._answers import (
    KpiAnswer,
    KpiRow,
    KpiWarning,
    MachineRuns,
    NotCounted,
    Stop,
    Timeline,
)
from genba.kpi._load import (
    OPERATOR_REASON,
    STATE_SETTINGS,
    Loaded,
    SignalReader,
    ideal_cycles,
    load,
    load_states,
)
from genba.kpi._oee import CLASSES, Calendar, Figures, Periods, compute
from genba.kpi._timeline import Counts, States
from genba.states import MachineState as S
from genba.tags import TagRegistry
from genba.timeparse import format_time, parse_range
from genba.types import NS_PER_S, SampleBatch, TagSpec

BY = ("shift", "day", "hour")
RATIOS = ("availability", "performance", "quality", "oee")
STOP_STATES = (S.DOWN, S.SETUP, S.SMALL_STOP, S.STARVED, S.BLOCKED)


@dataclass
class LineResult:
    path: str
    machines: list[MachineSettings]
    loaded: Loaded
    figures: Figures
    constraint: int


@dataclass
class Result:
    asset: str
    span: TimeRange
    by: str | None
    periods: Periods
    labels: list[str]
    lines: list[LineResult]


Table = Callable[[Figures, LineResult | None, bool], list[list[dict[str, Any]]]]
"""Figures of several entities over every period (the line's machines when the flag is
set, else one sum) → a dict per (entity, period)."""


def _each(fn: Callable[[Figures, LineResult | None, int], dict[str, Any]]) -> Table:
    """A :data:`Table` from a function of one entity's figures in one period."""

    def table(f: Figures, ln: LineResult | None, _machines: bool) -> list[list[dict[str, Any]]]:
        n, periods = f.all_s.shape
        return [
            [fn(f.take(np.array([i])).take_period(p), ln, p) for p in range(periods)]
            for i in range(n)
        ]

    return table


def calendar_arrays(cal: ShiftCalendar, span: TimeRange) -> Calendar:
    segs = cal.segments(span.start_ns, span.end_ns)
    return Calendar(
        np.array([s.start_ns for s in segs], dtype=np.int64),
        np.array([s.end_ns for s in segs], dtype=np.int64),
        np.array([1 if s.status == WORK else 0 for s in segs], dtype=np.int64),
        np.array([s.status != OFF for s in segs], dtype=bool),
    )


def periods_of(cal: ShiftCalendar, span: TimeRange, by: str | None) -> tuple[Periods, list[str]]:
    """Reporting periods: the whole span, or shifts / local days / hours clipped to it."""
    a, b = span.start_ns, span.end_ns
    if by is None:
        bounds = [(a, b, "all")]
    elif by == "shift":
        if not cal.shifts:
            raise QueryError(
                "The calendar of this asset has no shifts (24/7); group by day or hour instead."
            )
        bounds = [
            (max(i.start_ns, a), min(i.end_ns, b), f"{i.day.isoformat()} {i.name}")
            for i in cal.shift_instances(a, b)
        ]
    elif by == "day":

        def midnight(d: date) -> int:  # local midnight, in UTC ns (23 or 25 h apart at DST)
            return int(datetime.combine(d, time(0), tzinfo=cal.tz).timestamp()) * NS_PER_S

        day = datetime.fromtimestamp(a // NS_PER_S, tz=cal.tz).date()
        bounds = []
        while midnight(day) < b:
            nxt = day + timedelta(days=1)
            bounds.append((max(midnight(day), a), min(midnight(nxt), b), day.isoformat()))
            day = nxt
    elif by == "hour":
        h = 3600 * NS_PER_S
        starts = range(a - a % h, b, h)
        bounds = [(max(s, a), min(s + h, b), format_time(s)[:13] + ":00Z") for s in starts]
    else:
        raise QueryError(f"Unknown grouping {by!r}; valid values are: {', '.join(BY)}.")
    bounds = [x for x in bounds if x[1] > x[0]]
    return (
        Periods(
            np.array([x[0] for x in bounds], dtype=np.int64),
            np.array([x[1] for x in bounds], dtype=np.int64),
        ),
        [x[2] for x in bounds],
    )


REPORT_PERIODS = ("shift", "day", "week", "month")


def report_span(cal: ShiftCalendar, period: str, at_ns: int, *, holding: bool) -> TimeRange:
    """The calendar period a report covers, aligned as a plant counts it in its own zone:
    a shift of the calendar, a local day (midnight to midnight), an ISO week (Monday 00:00)
    or a calendar month. With ``holding`` the period that holds ``at_ns`` (to date, if it
    has not ended); else the last one that ended at or before ``at_ns``.

    >>> from genba.calendar import ShiftCalendar
    >>> cal = ShiftCalendar([], tz="Europe/Berlin")
    >>> at = 1767780000 * NS_PER_S  # Wednesday 2026-01-07 11:00 in Berlin
    >>> r = report_span(cal, "week", at, holding=False)
    >>> format_time(r.start_ns), format_time(r.end_ns)
    ('2025-12-28T23:00:00.000Z', '2026-01-04T23:00:00.000Z')
    >>> format_time(report_span(cal, "day", at, holding=True).start_ns)
    '2026-01-06T23:00:00.000Z'
    """

    def local(d: date) -> int:
        return int(datetime.combine(d, time(0), tzinfo=cal.tz).timestamp()) * NS_PER_S

    if period == "shift":
        if not cal.shifts:
            raise QueryError("This calendar has no shifts (24/7); report a day, week or month.")
        back = 8 * 86_400 * NS_PER_S
        shifts = cal.shift_instances(at_ns - back, at_ns + 1)
        pick = [
            i for i in shifts if (i.start_ns <= at_ns < i.end_ns if holding else i.end_ns <= at_ns)
        ]
        if not pick:
            raise QueryError("No shift of the calendar in the 8 days before that time.")
        return TimeRange(pick[-1].start_ns, pick[-1].end_ns)

    def bounds(d: date) -> tuple[date, date]:
        """The day, ISO week or month holding ``d``: its first day and the next one's."""
        if period == "day":
            return d, d + timedelta(days=1)
        if period == "week":
            monday = d - timedelta(days=d.weekday())
            return monday, monday + timedelta(days=7)
        first = d.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1)

    if period not in REPORT_PERIODS:
        raise QueryError(
            f"Unknown period {period!r}; valid values are: {', '.join(REPORT_PERIODS)}."
        )
    first, nxt = bounds(datetime.fromtimestamp(at_ns / NS_PER_S, tz=cal.tz).date())
    if not holding:  # the one before: it ended at or before at_ns
        first, nxt = bounds(first - timedelta(days=1))
    return TimeRange(local(first), local(nxt))


class Kpi:
    """KPIs of the machines in ``config``, read from ``store``."""

    def __init__(
        self,
        config: GenbaConfig,
        registry: TagRegistry,
        store: Store,
        clock: Clock,
        *,
        vouched_until: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.clock = clock
        self.reader = SignalReader(store, registry)
        self._vouched = vouched_until or clock.now_ns

    def vouched_until(self) -> int:
        """The newest time the data can speak for: now for a running node, the newest stored
        sample for a store read on its own. A last value holds to here, not beyond."""
        return self._vouched()

    # -- what is asked ---------------------------------------------------------------------
    def machines(self, asset: str) -> list[MachineSettings]:
        """The machines at or under ``asset`` ('' for all), in config order."""
        asset = asset.strip("/")
        out = [
            m for m in self.config.machine if not asset or m.path == asset or m.path.startswith(asset + "/")
        ]  # fmt: skip
        if not out:
            known = sorted({m.line for m in self.config.machine})
            raise QueryError(
                f"No machine of genba.toml is at or under {asset!r}; "
                f"lines: {', '.join(known) or '(none: add [[machine]] entries)'}."
            )
        return out

    def span(self, start: str | None, end: str | None) -> TimeRange:
        """``[start, end)`` as everywhere (:func:`genba.timeparse.parse_range`): relative
        times count from now; no start is a day before the end."""
        return TimeRange(*parse_range(start, end, now_ns=self.clock.now_ns(), default="24h"))

    def compute(self, asset: str, start: str | None, end: str | None, by: str | None) -> Result:
        """Load and sum the figures of every line under ``asset``."""
        machines = self.machines(asset)
        span = self.span(start, end)
        lines: dict[str, list[MachineSettings]] = {}
        for m in machines:
            lines.setdefault(m.line, []).append(m)
        first_cal = self.config.calendar_of(next(iter(lines)))
        periods, labels = periods_of(first_cal, span, by)
        until = self.vouched_until()

        def line(path: str, ms: list[MachineSettings]) -> LineResult:
            loaded = load(self.config, self.reader.prefetch(ms, span), ms, span, until)
            figures = compute(
                loaded.states,
                loaded.counts,
                loaded.energy,
                n_machines=len(ms),
                ideal_s=ideal_cycles(self.config, ms),
                calendar=calendar_arrays(self.config.calendar_of(path), span),
                periods=periods,
            )
            return LineResult(path, ms, loaded, figures, self._constraint(path, ms))

        # Lines are independent: one a core (the store's reads and numpy on long arrays let
        # go of the GIL), each read at once (one query of all its signals).
        with ThreadPoolExecutor(min(len(lines), os.cpu_count() or 1)) as pool:
            out = list(pool.map(line, lines, lines.values()))
        return Result(asset, span, by, periods, labels, out)

    def _constraint(self, line: str, ms: list[MachineSettings]) -> int:
        name = self.config.line_settings(line).constraint
        names = [m.path.rsplit("/", 1)[1] for m in ms]
        if name and name in names:
            return names.index(name)
        return int(np.argmax([m.ideal_cycle_time_s or 0.0 for m in ms]))

    # -- answers ---------------------------------------------------------------------------
    def _rows(self, r: Result, table: Table, *, lines_only: bool = False) -> list[KpiRow]:
        """Rows per period: each machine, each line, then the asset (as deep as it asks).
        ``table`` gives the figures of several entities over every period at once."""
        level = r.asset.strip("/").count("/") + 1 if r.asset.strip("/") else 0
        with_lines, with_total = level <= 3, level < 3 and len(r.lines) > 0 and not lines_only
        summed = [ln.figures.sum(0) for ln in r.lines]
        machines = None if lines_only else [table(ln.figures, ln, True) for ln in r.lines]
        lines = [table(f, ln, False)[0] for ln, f in zip(r.lines, summed, strict=True)]
        total = table(Figures.add(summed), None, False)[0] if with_total else []
        name = r.asset.strip("/") or "all"
        rows = []
        for p, label in enumerate(r.labels):
            a, b = int(r.periods.start_ns[p]), int(r.periods.end_ns[p])
            for ln, each in zip(r.lines, machines or [], strict=machines is not None):
                for m, d in zip(ln.machines, each, strict=True):
                    rows.append(KpiRow(m.path, "machine", label, a, b, d[p]))
            if with_lines:
                for ln, d in zip(r.lines, lines, strict=True):
                    rows.append(KpiRow(ln.path, "line", label, a, b, d[p]))
            if total:
                rows.append(KpiRow(name, ("all", "site", "area")[level], label, a, b, total[p]))
        return rows

    def oee(self, asset: str, start: str | None = None, end: str | None = None, by: str | None = None) -> KpiAnswer:  # fmt: skip
        """OEE, TEEP, waterfall and six big losses per machine, line and asset."""
        r = self.compute(asset, start, end, by)

        def table(f: Figures, ln: LineResult | None, machines: bool) -> list[list[dict[str, Any]]]:
            out = _metrics.unstack(_metrics.oee_arrays(f))
            if ln is not None and machines:
                for row, lost in zip(out, ln.loaded.unattributed.tolist(), strict=True):
                    for d in row:
                        d["counts"]["unattributed"] = float(lost)
            elif ln is not None:
                c = _metrics.oee_arrays(ln.figures.take(np.array([ln.constraint])))
                ratios = _metrics.unstack({k: c[k] for k in RATIOS})[0]
                who = {"machine": ln.machines[ln.constraint].path}
                for d, k in zip(out[0], ratios, strict=True):
                    d["constraint"] = who | k
            return out

        return self._answer("oee", r, self._rows(r, table))

    def losses(self, asset: str, start: str | None = None, end: str | None = None, by: str | None = None) -> KpiAnswer:  # fmt: skip
        """The six big losses per entity, and a Pareto of stop time by reason."""
        r = self.compute(asset, start, end, by)
        rows = self._rows(
            r,
            lambda f, ln, m: _metrics.unstack({"losses_min": _metrics.oee_arrays(f)["losses_min"]}),
        )
        names = self._reason_tree()
        pareto: dict[tuple[str, int], float] = {}
        for ln in r.lines:
            t = ln.figures.by_reason
            if t is None:
                continue
            for c, code, sec in zip(t.cls, t.reason, t.seconds, strict=True):
                cls = CLASSES[int(c)]
                if cls in ("unknown", "not_planned", "run"):
                    continue
                pareto[(cls, int(code))] = pareto.get((cls, int(code)), 0.0) + float(sec)
        items: list[dict[str, Any]] = [
            {
                "state": cls,
                "reason_code": code,
                "reason": names[code].name if code in names else str(code),
                "category": names[code].category if code in names else "unknown",
                "minutes": sec / 60,
            }
            for (cls, code), sec in sorted(pareto.items(), key=lambda kv: -kv[1])
        ]
        return self._answer("losses", r, rows, pareto=items)

    def reliability(self, asset: str, start: str | None = None, end: str | None = None, by: str | None = None) -> KpiAnswer:  # fmt: skip
        """MTBF, MTTR, throughput, first pass yield, counts vs target; failures by reason."""
        r = self.compute(asset, start, end, by)
        rows = self._rows(r, _each(lambda f, ln, p: _metrics.reliability(f)))
        names = {c: x.name for c, x in self._reason_tree().items()}
        by_reason: dict[str, dict[str, float]] = {}
        for ln in r.lines:
            codes, minutes = _failures(ln.loaded.states)
            for code, mins in zip(codes.tolist(), minutes.tolist(), strict=True):
                d = by_reason.setdefault(
                    names.get(code, str(code)), {"failures": 0, "minutes": 0.0}
                )
                d["failures"] += 1
                d["minutes"] += mins
        return self._answer("reliability", r, rows, failures_by_reason=by_reason)

    def cost(self, asset: str, start: str | None = None, end: str | None = None, by: str | None = None) -> KpiAnswer:  # fmt: skip
        """Costs, cost per good unit, loss money, margin per product, WIP turnover per line."""
        r = self.compute(asset, start, end, by)
        products = list(self.config.product)
        period_of = {ln.path: r.periods.index(ln.loaded.counts.ts_ns) for ln in r.lines}

        def fn(f: Figures, ln: LineResult | None, p: int) -> dict[str, Any]:
            assert ln is not None
            cnt = ln.loaded.counts
            sel = period_of[ln.path] == p
            first, last = 0, len(ln.machines) - 1
            started = _by_product(cnt, sel & (cnt.machine == first), len(products), both=True)
            finished = _by_product(cnt, sel & (cnt.machine == last), len(products), both=False)
            one = ln.figures.take_period(p)
            return _metrics.money(
                f,
                one.take(np.array([first])),
                one.take(np.array([last])),
                one.take(np.array([ln.constraint])),
                machines=len(ln.machines),
                operators=self.config.line_settings(ln.path).operators,
                costs=self.config.costs,
                products=products,
                by_product_started=started,
                by_product_finished=finished,
                wip_avg_units=_wip(ln, sel, int(r.periods.start_ns[p]), int(r.periods.end_ns[p])),
                inventory_value=self.config.line_settings(ln.path).inventory_value,
            )

        rows = self._rows(r, _each(fn), lines_only=True)
        return self._answer("cost", r, rows, currency=self.config.costs.currency)

    def _reason_tree(self) -> dict[int, ReasonSettings]:
        """Reason code → reason; code 0 is a stop nobody has given a reason yet."""
        tree = {x.code: x for x in self.config.reasons()}
        tree.setdefault(0, ReasonSettings(code=0, name="unassigned", category="unassigned"))
        return tree

    def _answer(self, kind: str, r: Result, rows: list[KpiRow], **extra: Any) -> KpiAnswer:
        return KpiAnswer(
            kind=kind,
            asset=r.asset or "all",
            span=r.span,
            by=r.by,
            rows=rows,
            not_counted=[
                NotCounted(ln.machines[i].path, why)
                for ln in r.lines
                for i, why in sorted(ln.loaded.not_counted.items())
            ],
            warnings=_warnings(r),
            extra=extra,
        )

    def timeline(self, asset: str, start: str | None = None, end: str | None = None) -> Timeline:  # fmt: skip
        """State runs of each machine under ``asset``, columnar: for a Gantt chart."""
        span = self.span(start, end)
        machines = self.machines(asset)
        not_counted: dict[int, str] = {}
        st = load_states(
            self.reader.prefetch(machines, span, STATE_SETTINGS),
            machines,
            span,
            self.vouched_until(),
            not_counted,
        )
        out = []
        for i, m in enumerate(machines):
            mine = st.machine == i
            out.append(
                MachineRuns(
                    m.path,
                    st.start_ns[mine],
                    st.end_ns[mine],
                    st.state[mine].astype(np.int8),
                    st.reason[mine].astype(np.int64),
                )
            )
        return Timeline(
            asset or "all",
            span,
            out,
            [NotCounted(machines[i].path, why) for i, why in sorted(not_counted.items())],
        )

    # -- downtime --------------------------------------------------------------------------
    def downtime(self, asset: str, start: str | None = None, end: str | None = None, states: str = "down,setup") -> list[Stop]:  # fmt: skip
        """Stops of the machines under ``asset``: id, machine, times, state, reason."""
        wanted = _states(states)
        machines = self.machines(asset)
        span = self.span(start, end)
        reasons = self._reason_tree()
        st = load_states(
            self.reader.prefetch(machines, span, STATE_SETTINGS),
            machines,
            span,
            self.vouched_until(),
            {},
        )
        out = []
        for j in np.flatnonzero(np.isin(st.state, wanted)):
            m = machines[int(st.machine[j])]
            code = int(st.reason[j])
            rs = reasons.get(code)
            s, e = int(st.start_ns[j]), int(st.end_ns[j])
            out.append(
                Stop(
                    id=downtime_id(m.path, s),
                    machine=m.path,
                    start_ns=s,
                    end_ns=e,
                    state=S(int(st.state[j])),
                    reason_code=code,
                    reason=rs.name if rs else str(code),
                    category=rs.category if rs else "unknown",
                    entered_by_operator=bool(st.operator[j]),
                )
            )
        out.sort(key=lambda d: (d.start_ns, d.machine))
        return out

    def reason_sample(self, downtime: str, code: int) -> SampleBatch:
        """The sample that records an operator's reason ``code`` for stop ``downtime``, to
        be stored on the machine's ``downtime_reason`` tag."""
        m, start_ns = self._resolve(downtime)
        reasons = {x.code: x for x in self.config.reasons()}
        if code not in reasons:
            raise QueryError(
                f"Unknown reason code {code}; the reason tree has: "
                + ", ".join(f"{c} ({x.category}/{x.name})" for c, x in sorted(reasons.items()))
                + "."
            )
        span = TimeRange(start_ns, start_ns + NS_PER_S)
        st = load_states(self.reader, [m], span, self.vouched_until())
        j = np.searchsorted(st.start_ns, start_ns, "right") - 1
        if j < 0 or int(st.start_ns[j]) != start_ns or st.state[j] not in STOP_STATES:
            raise QueryError(
                f"No stop of {m.path} starts at {format_time(start_ns)}; take the id from "
                "GET /api/downtime."
            )
        path = f"{m.path}/{OPERATOR_REASON}"
        earlier, _ = self.reader.samples(
            m, OPERATOR_REASON, TimeRange(start_ns, start_ns + NS_PER_S)
        )
        n = len(earlier)
        (tag,) = self.registry.ensure(
            [TagSpec(path, unit="1", description="Downtime reason code entered by an operator")]
        )
        return SampleBatch.from_columns(
            tag_ids=np.array([tag.id], dtype=np.int32),
            ts_ns=np.array([start_ns + n], dtype=np.int64),  # later entries win: 1 ns apart
            values=np.array([float(code)]),
        )

    def _resolve(self, downtime: str) -> tuple[MachineSettings, int]:
        head, sep, ts = downtime.rpartition("@")
        for m in self.config.machine:
            if sep and m.path.replace("/", ".") == head and ts.lstrip("-").isdigit():
                return m, int(ts)
        raise QueryError(
            f"Unknown downtime id {downtime!r}; ids look like "
            "'site.area.line.machine@<start ns>': take them from GET /api/downtime."
        )


def downtime_id(machine: str, start_ns: int) -> str:
    """The id of the stop of ``machine`` starting at ``start_ns``.

    >>> downtime_id("berlin/packaging/line1/filler", 1767571200000000000)
    'berlin.packaging.line1.filler@1767571200000000000'
    """
    return f"{machine.replace('/', '.')}@{start_ns}"


def _states(text: str) -> list[int]:
    out = []
    for name in text.split(","):
        try:
            out.append(int(S[name.strip().upper()]))
        except KeyError:
            raise QueryError(
                f"Unknown state {name!r}; valid values are: "
                + ", ".join(s.name.lower() for s in S)
                + "."
            ) from None
    return out


def _failures(st: States) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each failure (a run of DOWN rows, split only where its reason changed): its reason —
    the first one given during it, 0 if none — and its length in minutes."""
    down = st.state == S.DOWN
    first = down & np.append(True, (st.state[:-1] != S.DOWN) | (st.machine[1:] != st.machine[:-1]))
    run = (np.cumsum(first) - 1)[down]
    n = int(first.sum())
    minutes = np.bincount(
        run, weights=(st.end_ns[down] - st.start_ns[down]) / NS_PER_S / 60, minlength=n
    )
    given = st.reason[down] != 0
    codes = np.zeros(n, dtype=np.int64)
    runs_with, at = np.unique(run[given], return_index=True)
    codes[runs_with] = st.reason[down][given][at]
    return codes, minutes.astype(np.float64)


def _by_product(cnt: Counts, sel: npt.NDArray[np.bool_], n: int, *, both: bool) -> list[float]:
    w = cnt.good[sel] + (cnt.reject[sel] if both else 0.0)
    sums = np.bincount(cnt.product[sel], weights=w, minlength=n + 1)
    return [float(x) for x in sums[1:]] if n else []


def _wip(ln: LineResult, sel: npt.NDArray[np.bool_], a: int, b: int) -> float | None:
    """Average parts inside the line over the period ``[a, b)`` (its count events ``sel``):
    started at the first machine, less rejects anywhere, less good parts out of the last; the
    level at the period's start is the lowest one the flows allow (a line cannot hold fewer
    than no parts)."""
    c = ln.loaded.counts
    first, last = 0, len(ln.machines) - 1
    flow = np.where(c.machine == first, c.good + c.reject, 0.0) - c.reject
    flow = flow - np.where(c.machine == last, c.good, 0.0)
    t, f = c.ts_ns[sel], flow[sel]
    if len(t) == 0:
        return None
    order = np.argsort(t, kind="stable")
    t, level = t[order], np.cumsum(f[order])
    start_level = -min(0.0, float(level.min()))
    dt = np.diff(np.append(t, b)).astype(float)
    return float(((level + start_level) * dt).sum() + start_level * (t[0] - a)) / (b - a)


def _warnings(r: Result) -> list[KpiWarning]:
    """What makes a figure suspect, with the machine and the fix: a performance above
    100 % means the ideal cycle is set slower than the machine really runs (the speed loss
    would be negative), so OEE is overstated until the ideal is corrected."""
    out: list[KpiWarning] = []
    for ln in r.lines:
        net, run = ln.figures.net_run_s.sum(axis=1), ln.figures.run_s.sum(axis=1)
        for i, m in enumerate(ln.machines):
            if run[i] <= 0 or net[i] <= run[i] * 1.001 or m.ideal_cycle_time_s is None:
                continue
            perf = float(net[i] / run[i])
            fastest = m.ideal_cycle_time_s / perf
            out.append(
                KpiWarning(
                    machine=m.path,
                    kind="performance_above_100",
                    performance=perf,
                    message=(
                        f"performance of {m.path} is {perf:.1%}: it made parts faster than its "
                        f"ideal_cycle_time_s = {m.ideal_cycle_time_s:g} s allows, so its OEE "
                        "is overstated; set ideal_cycle_time_s in its [[machine]] to at most "
                        f"{fastest:.3g} s (its average cycle while running)"
                    ),
                )
            )
    return out
