"""KPI benchmark: OEE with the six big losses for 100 machines over 30 days.

The input is the state events 30 days of 1 Hz samples of 100 machines turn into (260 million
state samples become about a million state runs; parts are counted per running stretch,
energy per state run): generated with the demo plant's rates (5 small stops an hour, a
breakdown every 6 running hours, a changeover twice a day, slow cycles) against a
three-shift calendar with breaks in Europe/Berlin time. Both implementations compute the
same (machine, shift) table — seconds in every time class, parts, ideal-weighted counts,
start-up rejects, energy (and energy while not producing), failures, stop time by reason —
and the benchmark checks they agree before it times them:

* genba: :func:`genba.kpi.compute` (one ``repeat`` to cut runs at calendar and shift
  boundaries, ``bincount`` to sum);
* baseline: the same in plain pandas (``repeat`` + ``groupby().cumcount()`` to cut,
  ``merge_asof`` for the calendar, ``groupby().sum()``).

Prints a Markdown table: medians of ``--runs`` runs, and the ratio to the baseline. With
``--store-days N`` it also times the whole path a user takes, ``Kpi.oee`` from the stored 1 Hz
samples of the demo plant simulated for N days into a DuckDB file (read, track states, count,
compute; no baseline). With ``--fleet`` it times ``Kpi.oee`` for all ``--machines`` ×
``--days`` read from a DuckDB store of what those machines send (:func:`fleet_samples`: states
on change, counters every ``--every-s`` seconds) and checks the answer against the prepared
events (every running second; the parts, but for the last minute's).

    python bench/kpi.py [--machines 100] [--days 30] [--runs 5] [--store-days 7] [--fleet]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from genba.calendar import Break, Shift, ShiftCalendar
from genba.historian import TimeRange
from genba.kpi import CLASSES, Counts, Energy, Periods, States, compute, periods_of
from genba.kpi._oee import _CLASS, Calendar
from genba.kpi._service import calendar_arrays
from genba.states import MachineState as S

NS = 1_000_000_000
T0 = 1_767_571_200 * NS  # 2026-01-05T00:00Z


def calendar() -> ShiftCalendar:
    return ShiftCalendar(
        [
            Shift("early", "06:00", "14:00", breaks=[Break("10:00", 30)]),
            Shift("late", "14:00", "22:00", breaks=[Break("18:00", 30)]),
            Shift("night", "22:00", "06:00", breaks=[Break("02:00", 30)]),
        ],
        tz="Europe/Berlin",
    )


def make_events(machines: int, days: int, cal: Calendar) -> tuple[States, Counts, Energy]:
    """State runs per machine: running stretches between stops, breaks as planned stops."""
    rng = np.random.default_rng(7)
    span = days * 86_400.0
    parts_s, parts_c, parts_e = [], [], []
    for m in range(machines):
        n = int(span / 3600 * 14)  # ~ one running stretch and one stop each, per 4 minutes
        run = rng.exponential(600.0, n)
        kind = rng.choice([S.SMALL_STOP, S.DOWN, S.SETUP, S.STARVED], n, p=[0.82, 0.03, 0.02, 0.13])
        stop = np.select(
            [kind == S.SMALL_STOP, kind == S.DOWN, kind == S.SETUP],
            [rng.exponential(45.0, n), rng.gamma(2.0, 270.0, n), np.full(n, 1200.0)],
            rng.exponential(120.0, n),
        )
        dur = np.empty(2 * n)
        dur[0::2], dur[1::2] = run, stop
        state = np.empty(2 * n, dtype=np.int8)
        state[0::2], state[1::2] = S.RUNNING, kind
        start = np.concatenate([[0.0], np.cumsum(dur)[:-1]])
        keep = start < span
        start_ns = T0 + (start[keep] * NS).astype(np.int64)
        end_ns = np.minimum(np.append(start_ns[1:], T0 + int(span * NS)), T0 + int(span * NS))
        st = state[keep]
        # the calendar's breaks and off time override: planned stop while not working
        seg = np.searchsorted(cal.start_ns, start_ns, "right") - 1
        st = np.where((cal.working[seg] == 0) & (st == S.RUNNING), np.int8(S.PLANNED_STOP), st)
        k = len(start_ns)
        parts_s.append(
            States(
                np.full(k, m, dtype=np.int32), start_ns, end_ns, st.astype(np.int8),
                np.where(st == S.DOWN, 31, 0).astype(np.int32), np.zeros(k, dtype=bool),
            )
        )  # fmt: skip
        running = st == S.RUNNING
        secs = (end_ns - start_ns) / NS
        made = np.floor(secs[running] / rng.uniform(1.0, 1.3, int(running.sum())))
        rej = rng.binomial(made.astype(np.int64), 0.03).astype(float)
        parts_c.append(
            Counts(
                np.full(len(made), m, dtype=np.int32), end_ns[running] - 1,
                rng.integers(1, 3, len(made)).astype(np.int32), made - rej, rej,
                np.zeros(len(made)),
            )
        )  # fmt: skip
        kw = np.where(running, 7.5, 1.5) * secs / 3600
        parts_e.append(Energy(np.full(k, m, dtype=np.int32), end_ns - 1, kw, running))
    return States.concat(parts_s), Counts.concat(parts_c), Energy.concat(parts_e)


def pandas_baseline(
    states: States,
    counts: Counts,
    energy: Energy,
    ideal: np.ndarray,
    cal: Calendar,
    periods: Periods,
) -> dict[str, np.ndarray]:
    """The same sums in plain pandas."""
    M, P = ideal.shape[0], len(periods)
    df = pd.DataFrame(
        {"m": states.machine, "s": states.start_ns, "e": states.end_ns, "st": states.state,
         "reason": states.reason}
    )  # fmt: skip
    cuts = np.unique(np.concatenate([cal.start_ns, cal.end_ns, periods.start_ns, periods.end_ns]))
    df["i0"] = np.searchsorted(cuts, df["s"], "right")
    df["reps"] = (np.searchsorted(cuts, df["e"], "left") - df["i0"]).clip(lower=0) + 1
    pieces = df.loc[df.index.repeat(df["reps"])].copy()
    pieces["k"] = pieces.groupby(level=0).cumcount()
    c = np.append(cuts, cuts[-1])
    pieces["a"] = np.where(
        pieces["k"] == 0, pieces["s"], c[(pieces["i0"] + pieces["k"] - 1).clip(lower=0)]
    )
    last = pieces["k"] == pieces["reps"] - 1
    pieces["b"] = np.where(last, pieces["e"], c[pieces["i0"] + pieces["k"]])
    cal_df = pd.DataFrame({"a": cal.start_ns, "work": cal.working})
    pieces = pieces.sort_values("a")
    pieces = pd.merge_asof(pieces, cal_df, on="a")
    pieces["cls"] = _CLASS[pieces["work"].to_numpy(), pieces["st"]]
    pieces["p"] = periods.index(pieces["a"].to_numpy())
    pieces["dur"] = (pieces["b"] - pieces["a"]) / NS
    sec = pieces[pieces["p"] >= 0].groupby(["m", "p", "cls"])["dur"].sum()
    seconds = np.zeros((M, P, len(CLASSES)))
    idx = sec.index.to_frame().to_numpy()
    seconds[idx[:, 0], idx[:, 1], idx[:, 2]] = sec.to_numpy()
    by_reason = pieces[pieces["p"] >= 0].groupby(["m", "cls", "reason"])["dur"].sum()
    # failures: runs of DOWN, counted in the period where they start
    down = df["st"] == S.DOWN
    first = down & ~(down.shift(fill_value=False) & (df["m"] == df["m"].shift()))
    fails = (
        df[first].assign(p=lambda x: periods.index(x["s"].to_numpy())).groupby(["m", "p"]).size()
    )
    cdf = pd.DataFrame(
        {"m": counts.machine, "t": counts.ts_ns, "good": counts.good, "reject": counts.reject,
         "su": counts.startup_reject}
    )  # fmt: skip
    cdf["ideal"] = ideal[counts.machine, counts.product]
    cdf["p"] = periods.index(cdf["t"].to_numpy())
    cdf["net"] = cdf["ideal"] * (cdf["good"] + cdf["reject"])
    cdf["fp"] = cdf["ideal"] * cdf["good"]
    cdf["su_s"] = cdf["ideal"] * cdf["su"]
    g = cdf[cdf["p"] >= 0].groupby(["m", "p"])[["good", "reject", "net", "fp", "su", "su_s"]].sum()
    out = {"seconds": seconds, "by_reason": by_reason.to_numpy(), "failures": fails.to_numpy()}
    for col in ("good", "reject", "net", "fp"):
        arr = np.zeros((M, P))
        ix = g.index.to_frame().to_numpy()
        arr[ix[:, 0], ix[:, 1]] = g[col].to_numpy()
        out[col] = arr
    edf = pd.DataFrame(
        {"m": energy.machine, "p": periods.index(energy.ts_ns), "kwh": energy.kwh,
         "idle": energy.kwh * ~energy.producing}
    )  # fmt: skip
    e = edf[edf["p"] >= 0].groupby(["m", "p"])[["kwh", "idle"]].sum()["kwh"]
    arr = np.zeros((M, P))
    ix = e.index.to_frame().to_numpy()
    arr[ix[:, 0], ix[:, 1]] = e.to_numpy()
    out["energy"] = arr
    return out


def store_path(days: int, runs: int) -> None:
    """Time Kpi.oee over ``days`` of the demo plant's samples in a DuckDB store."""
    import tempfile
    from pathlib import Path

    from genba.clock import RealClock
    from genba.config import example_config, parse_config
    from genba.historian.duckdb import DuckDBStore
    from genba.kpi import Kpi
    from genba.sim import Simulator, load_scenario
    from genba.tags import TagRegistry
    from genba.types import SampleBatch

    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    reg = TagRegistry()
    tags = reg.ensure(sim.tag_specs())
    ids = np.array([t.id for t in tags], dtype=np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "kpi.duckdb")
        store.save_tags(tags)
        for h in range(6, days * 24 + 6, 6):
            ts, v = sim.advance(min(h * 3600.0, days * 86_400.0 + 1))
            store.append(SampleBatch.from_columns(
                tag_ids=np.tile(ids, len(ts)), ts_ns=np.repeat(ts, len(ids)), values=v.ravel()))  # fmt: skip
        store.compact()  # laid out as on a running node: all but the newest ~2 M samples by tag
        kpi = Kpi(parse_config(example_config()), reg, store, RealClock())
        start, end = str(T0 // 10**6), str((T0 + days * 86_400 * NS) // 10**6)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            kpi.oee("berlin/packaging/line1", start, end, "shift")
            times.append(time.perf_counter() - t0)
        n = store.count()
        reads = _reading(store, reg, days, runs)
        store.close()
    print("\n| from the store (demo plant, DuckDB) | samples stored | Kpi.oee by shift (s) |")
    print("|---|---:|---:|")
    print(f"| {days} days, 3 machines, 42 tags at 1 Hz | {n:,} | {statistics.median(times):.2f} |")
    print(f"\n| reading the 18 signal tags, {days} days (DuckDB) | rows | s |")
    print("|---|---:|---:|")
    for name, (rows, secs) in reads.items():
        print(f"| {name} | {rows:,} | {secs:.2f} |")


def _reading(store: Any, reg: Any, days: int, runs: int) -> dict[str, tuple[int, float]]:
    """The three ways to read the KPI signals: raw samples, runs encoded in SQL windows
    (``RUNS_SQL``, what PostgreSQL does), runs encoded in numpy (what DuckDB does)."""
    from genba.historian import TimeRange
    from genba.historian._store import RUNS_SQL, Runs
    from genba.types import Quality

    signals = ("state", "reason", "product", "good_count", "reject_count", "energy")
    tag_ids = [t.id for t in reg if t.spec.path.rsplit("/", 1)[1] in signals]
    span = TimeRange(T0 - 10 * NS, T0 + days * 86_400 * NS)
    gap = 10 * NS

    def sql_runs(tag: int) -> Runs:
        sql = RUNS_SQL.format(
            bad=int(Quality.BAD), gap="$gap", samples="@samples", tag="$tag", a="$a", b="$b"
        )  # @samples: the hot table and the segments (see genba.historian._segments)
        c = store._samples(sql, {"gap": gap, "tag": tag, "a": span.start_ns, "b": span.end_ns})
        return Runs(c["start_ns"], c["last_ns"], c["value"])

    ways: dict[str, Callable[[int], Any]] = {
        "raw samples (Store.raw)": lambda t: store.raw([t], span),
        "runs in SQL windows (RUNS_SQL)": sql_runs,
        "runs in numpy after one scan (DuckDB's Store.runs)": lambda t: store.runs(
            t, span, max_gap_ns=gap
        ),
    }
    out = {}
    for name, read in ways.items():
        secs = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = sum(len(read(t)) for t in tag_ids)
            secs.append(time.perf_counter() - t0)
        out[name] = (rows, statistics.median(secs))
    return out


def fleet_config(machines: int) -> str:
    """genba.toml for ``machines`` machines in lines of 10 under one site and area, the
    calendar of :func:`calendar` and the two products of :func:`make_events`."""
    head = """
[[calendar]]
name = "three-shifts"
timezone = "Europe/Berlin"
shift = [
  { name = "early", start = "06:00", end = "14:00", breaks = [{ start = "10:00", minutes = 30 }] },
  { name = "late", start = "14:00", end = "22:00", breaks = [{ start = "18:00", minutes = 30 }] },
  { name = "night", start = "22:00", end = "06:00", breaks = [{ start = "02:00", minutes = 30 }] },
]
[[product]]
code = 1
name = "small"
[[product]]
code = 2
name = "large"
cycle_factor = 1.5
"""
    lines = sorted({m // 10 for m in range(machines)})
    text = head + "".join(
        f'[[line]]\npath = "plant/area/line{ln:02d}"\ncalendar = "three-shifts"\n' for ln in lines
    )
    return text + "".join(
        f'[[machine]]\npath = "{machine_path(m)}"\nideal_cycle_time_s = 1.0\n'
        for m in range(machines)
    )


def machine_path(m: int) -> str:
    return f"plant/area/line{m // 10:02d}/m{m % 10}"


def fleet_samples(
    states: States, counts: Counts, energy: Energy, machines: int, end_ns: int, every_s: float
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """What the machines of :func:`make_events` send, shaped the way plants send it: state,
    reason and product on change; the good, reject and energy counters every ``every_s``
    seconds while they change (report by exception with a publishing interval), parts
    counted evenly through each running stretch. Returns (machine, time, value) columns for
    each signal tag."""
    grid = np.arange(T0, end_ns, int(every_s * NS), dtype=np.int64)
    m_s, t_s = states.machine, states.start_ns
    out = {
        "state": (m_s, t_s, states.state.astype(np.float64)),
        "reason": (m_s, t_s, states.reason.astype(np.float64)),
    }
    # the product: set at each machine's first state, changed at every setup
    setup = (states.state == S.SETUP).astype(np.int64)
    first = np.r_[True, m_s[1:] != m_s[:-1]]
    done = np.cumsum(setup)
    own = done - (done - setup)[np.flatnonzero(first)][np.cumsum(first) - 1]
    pick = first | (setup == 1)
    out["product"] = (m_s[pick], t_s[pick], 1.0 + own[pick] % 2)
    running = states.state == S.RUNNING
    for name, rows, amount in (
        ("good_count", running, counts.good),
        ("reject_count", running, counts.reject),
        ("energy", np.ones(len(m_s), dtype=bool), energy.kwh),
    ):
        cols = []
        for m in range(machines):
            mine = rows & (m_s == m)
            a = amount[counts.machine == m] if name != "energy" else amount[energy.machine == m]
            after = np.cumsum(a)
            xp = np.column_stack([t_s[mine], states.end_ns[mine]]).ravel()
            fp = np.column_stack([after - a, after]).ravel()
            value = np.interp(grid, xp, fp)
            value = np.floor(value) if name != "energy" else np.round(value, 3)
            keep = np.r_[True, value[1:] != value[:-1]]
            cols.append((np.full(int(keep.sum()), m, dtype=np.int32), grid[keep], value[keep]))
        out[name] = tuple(np.concatenate(c) for c in zip(*cols, strict=True))  # type: ignore[assignment]
    return out


def fleet_path(machines: int, days: int, runs: int, every_s: float, prepared: Any) -> None:
    """Time ``Kpi.oee`` by shift for every machine of :func:`make_events` read from a
    DuckDB store of what they send (:func:`fleet_samples`), and check it against the
    computation on the prepared events (``prepared``: their figures)."""
    import tempfile
    from pathlib import Path

    from genba.clock import RealClock
    from genba.config import parse_config
    from genba.historian.duckdb import DuckDBStore
    from genba.kpi import Kpi
    from genba.tags import TagRegistry
    from genba.types import SampleBatch, TagSpec

    end_ns = T0 + days * 86_400 * NS
    cal = calendar_arrays(calendar(), TimeRange(T0, end_ns))
    states, counts, energy = make_events(machines, days, cal)
    sent = fleet_samples(states, counts, energy, machines, end_ns, every_s)
    reg = TagRegistry()
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "fleet.duckdb")
        n = 0
        # a node meets a machine's tags together: ids machine by machine
        store.save_tags(reg.ensure([TagSpec(f"{machine_path(i)}/{name}") for i in range(machines) for name in sent]))  # fmt: skip
        for name, (m, t, v) in sent.items():
            ids = np.array([reg.get(f"{machine_path(i)}/{name}").id for i in range(machines)], dtype=np.int32)  # fmt: skip
            store.append(SampleBatch.from_columns(tag_ids=ids[m], ts_ns=t, values=v))
            n += len(t)
        store.compact()
        kpi = Kpi(parse_config(fleet_config(machines)), reg, store, RealClock(),
                  vouched_until=lambda: end_ns)  # fmt: skip
        start, end = str(T0 // 10**6), str(end_ns // 10**6)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            answer = kpi.oee("", start, end, "shift")
            times.append(time.perf_counter() - t0)
        store.close()
    # the states are those of the prepared events, so is every second of the waterfall; the
    # parts are, but for those of the last minute (the counters' last sample before the end)
    rows = [r for r in answer.rows if r.level == "all"]
    run_s = sum(r.figures["waterfall_min"]["run"] for r in rows) * 60
    good = sum(r.figures["counts"]["good"] for r in rows)
    want_run = float((prepared.time("run") + prepared.time("small_stop")).sum())
    assert abs(run_s - want_run) < 1e-6 * want_run, (run_s, want_run)
    assert 0 <= float(prepared.good.sum()) - good < 60 * machines, (good, prepared.good.sum())
    print(
        f"\n| from the store ({machines} machines, {days} days, DuckDB) | samples stored | Kpi.oee by shift (s) |"
    )
    print("|---|---:|---:|")
    print(
        f"| state, reason, product on change; counters every {every_s:g} s | {n:,} | {statistics.median(times):.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=100)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--store-days", type=int, default=0, help="Also time Kpi.oee from a store.")
    ap.add_argument(
        "--fleet",
        action="store_true",
        help="Also time Kpi.oee of all machines x days from a store.",
    )
    ap.add_argument("--every-s", type=float, default=60.0, help="--fleet: counters sent every N s.")
    args = ap.parse_args()
    span = TimeRange(T0, T0 + args.days * 86_400 * NS)
    cal_obj = calendar()
    cal = calendar_arrays(cal_obj, span)
    periods, labels = periods_of(cal_obj, span, "shift")
    states, counts, energy = make_events(args.machines, args.days, cal)
    ideal = np.tile(np.array([1.0, 1.0, 1.5]), (args.machines, 1))

    def ours() -> Any:
        return compute(states, counts, energy, n_machines=args.machines, ideal_s=ideal,
                       calendar=cal, periods=periods)  # fmt: skip

    def base() -> Any:
        return pandas_baseline(states, counts, energy, ideal, cal, periods)

    f, b = ours(), base()
    assert np.allclose(f.seconds, b["seconds"]), "genba and pandas disagree on time"
    assert np.allclose(f.good, b["good"])
    assert np.allclose(f.net_run_s, b["net"])
    assert np.allclose(f.fully_productive_s, b["fp"])
    assert np.allclose(f.energy_kwh, b["energy"])
    assert f.by_reason is not None
    assert np.allclose(np.sort(f.by_reason.seconds), np.sort(b["by_reason"]))
    assert f.failures.sum() == b["failures"].sum()
    times: dict[str, list[float]] = {"genba": [], "pandas": []}
    for _ in range(args.runs):
        for name, fn in (("genba", ours), ("pandas", base)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    samples = args.machines * args.days * 86_400
    print(f"{args.machines} machines x {args.days} days = {samples:,} machine-seconds of 1 Hz "
          f"data as {len(states):,} state runs, {len(counts.ts_ns):,} count events, "
          f"{len(energy.ts_ns):,} energy events; {len(labels)} shifts; median of {args.runs}\n")  # fmt: skip
    print("| implementation | OEE + six losses, all machines x shifts (s) | ratio to baseline |")
    print("|---|---:|---:|")
    print(
        f"| genba (numpy: repeat + bincount) | {med['genba']:.3f} | {med['pandas'] / med['genba']:.1f}x |"
    )
    print(f"| pandas groupby (baseline) | {med['pandas']:.3f} | 1.0x |")
    if args.store_days:
        store_path(args.store_days, args.runs)
    if args.fleet:
        fleet_path(args.machines, args.days, args.runs, args.every_s, f)


if __name__ == "__main__":
    main()
