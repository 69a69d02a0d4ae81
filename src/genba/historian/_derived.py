"""Queries every backend answers the same way, built on :meth:`Store.raw`: the value at a time,
resampling onto a regular grid (step or linear), and time-weighted averages.

A tag's value is taken to hold from one sample until the next (a PLC register or a sensor
reading is valid until it changes); BAD samples are left out, so the last good value holds
through them. The math is plain numpy on the samples of the range plus the one sample before
it, so both backends give identical answers.

>>> step_at(np.array([0, 10]), np.array([1.0, 2.0]), np.array([-1, 0, 5, 10, 15]))
array([nan,  1.,  1.,  2.,  2.])
>>> linear_at(np.array([0, 10]), np.array([1.0, 2.0]), np.array([-1, 0, 5, 10, 15]))
array([nan, 1. , 1.5, 2. , nan])
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from genba.errors import QueryError
from genba.historian._store import Buckets, Runs, Store, TimeRange
from genba.types import NS_PER_HOUR, Quality, SampleBatch, TagId

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
LOOKBACKS_NS = (NS_PER_HOUR, 24 * NS_PER_HOUR, 30 * 24 * NS_PER_HOUR, 366 * 24 * NS_PER_HOUR, None)
"""How far back :func:`value_at` looks, widening until it finds a sample."""
MAX_GRID = 1_000_000


def step_at(ts: I64, values: F64, grid: I64) -> F64:
    """The value holding at each grid time: the last sample at or before it (NaN before any)."""
    i = np.searchsorted(ts, grid, side="right") - 1
    out = np.full(len(grid), np.nan)
    ok = i >= 0
    out[ok] = values[i[ok]]
    return out


def linear_at(ts: I64, values: F64, grid: I64) -> F64:
    """Straight lines between samples; NaN outside the first and last sample."""
    if not len(ts):
        return np.full(len(grid), np.nan)
    out = np.interp(grid.astype(np.float64), ts.astype(np.float64), values)
    out[(grid < ts[0]) | (grid > ts[-1])] = np.nan
    return out


def twa_buckets(ts: I64, values: F64, start: int, end: int, every: int) -> tuple[I64, F64]:
    """Time-weighted average per epoch-aligned bucket of [start, end) for a step signal.

    ``ts``/``values`` are the samples, sorted, including the last one before ``start`` if any.
    Time before the first known value is not covered; buckets with no covered time are left out.
    """
    first_bucket = start - start % every
    edges = np.arange(first_bucket, end + every, every, dtype=np.int64)
    edges = np.clip(edges, start, end)
    edges = np.unique(edges)
    if len(ts) == 0 or len(edges) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0)
    x = np.maximum(ts, start)  # the one sample before start counts from start
    keep = np.r_[x[1:] != x[:-1], True]  # same instant twice: the later value wins
    x, y = x[keep], values[keep]
    seg = np.diff(np.r_[x, max(end, int(x[-1]))]).astype(np.float64)
    area = np.r_[0.0, np.cumsum(y * seg)]  # integral up to each knot

    def integral(t: I64) -> F64:
        k = np.searchsorted(x, t, side="right") - 1
        known = k >= 0
        kk = np.maximum(k, 0)
        f = area[kk] + y[kk] * (t - x[kk])
        return np.where(known, f, 0.0)

    covered = np.maximum(edges - x[0], 0).astype(np.float64)
    f = integral(edges)
    span = np.diff(covered)
    ok = span > 0
    twa = np.diff(f)[ok] / span[ok]
    bucket = edges[:-1][ok]
    return bucket - bucket % every, twa


def _good(batch: SampleBatch) -> SampleBatch:
    keep = batch.quality < Quality.BAD
    return SampleBatch(
        batch.tag_ids[keep], batch.ts_ns[keep], batch.values[keep], batch.quality[keep]
    )


def last_before(store: Store, tag_id: TagId, t_ns: int) -> tuple[int, float] | None:
    """The last sample of ``tag_id`` before ``t_ns`` as (time, value), whatever its quality
    (a BAD one, a stale mark, comes back as NaN); None if there is none."""
    got = value_at(store, [tag_id], t_ns - 1, good_only=False)
    if not len(got):
        return None
    bad = got.quality[0] >= Quality.BAD
    return int(got.ts_ns[0]), float("nan") if bad else float(got.values[0])


def value_at(
    store: Store, tag_ids: list[TagId], t_ns: int, *, good_only: bool = True
) -> SampleBatch:
    """Each tag's last good sample (any sample, without ``good_only``) at or before ``t_ns``;
    tags with none are left out. Looks back an hour, then a day, a month, a year, then all
    history, asking only for the tags not found yet."""
    found: list[SampleBatch] = []
    todo = np.unique(np.asarray(tag_ids, dtype=np.int64))
    lo_prev = t_ns + 1
    for back in LOOKBACKS_NS:
        if not len(todo):
            break
        lo = -(2**62) if back is None else t_ns - back
        if lo >= lo_prev:
            continue
        got = store.raw(todo.tolist(), TimeRange(lo, lo_prev))
        if good_only:
            got = _good(got)
        lo_prev = lo
        if len(got):  # rows come in time order: the last row of each tag wins
            rev = got.tag_ids[::-1]
            _, first = np.unique(rev, return_index=True)
            found.append(got.select(len(got) - 1 - first))
            todo = np.setdiff1d(todo, got.tag_ids)
    if not found:
        return SampleBatch.empty()
    out = SampleBatch.concat(found)
    return out.select(np.argsort(out.tag_ids, kind="stable"))


def _with_prior(store: Store, tag_id: TagId, span: TimeRange) -> tuple[I64, F64]:
    before = value_at(store, [tag_id], span.start_ns - 1) if span.start_ns > -(2**62) else None
    inside = _good(store.raw([tag_id], span))
    ts, v = inside.ts_ns, inside.values
    if before is not None and len(before):
        ts, v = np.r_[before.ts_ns, ts], np.r_[before.values, v]
    return ts.astype(np.int64), v.astype(np.float64)


def resample(
    store: Store, tag_id: TagId, span: TimeRange, step_ns: int, method: Literal["step", "linear"]
) -> tuple[I64, F64]:
    """The tag on a grid of ``step_ns`` (epoch-aligned) over ``span``: (grid times, values)."""
    if step_ns <= 0:
        raise QueryError("the resampling step must be positive, e.g. 1s or 1m")
    first = -(-span.start_ns // step_ns) * step_ns
    n = max((span.end_ns - 1 - first) // step_ns + 1, 0)
    if n > MAX_GRID:
        raise QueryError(
            f"{n:,} grid points is more than {MAX_GRID:,}; choose a longer step or a shorter range"
        )
    grid = first + np.arange(n, dtype=np.int64) * step_ns
    ts, v = _with_prior(store, tag_id, TimeRange(span.start_ns, span.end_ns))
    if method == "step":
        return grid, step_at(ts, v, grid)
    if method == "linear":
        after = value_after(store, tag_id, span.end_ns)
        if after is not None:
            ts, v = np.r_[ts, after[0]], np.r_[v, after[1]]
        return grid, linear_at(ts, v, grid)
    raise QueryError(f"unknown method {method!r}; valid values are: step, linear")


def value_after(store: Store, tag_id: TagId, t_ns: int) -> tuple[int, float] | None:
    """The first good sample at or after ``t_ns`` within a day, for interpolating up to it."""
    got = _good(store.raw([tag_id], TimeRange(t_ns, t_ns + 24 * NS_PER_HOUR), limit=1000))
    return (int(got.ts_ns[0]), float(got.values[0])) if len(got) else None


def time_weighted(store: Store, tag_ids: list[TagId], span: TimeRange, every_ns: int) -> Buckets:
    """Time-weighted average ("twa") per tag and epoch-aligned bucket of ``every_ns``."""
    tags: list[I64] = []
    buckets: list[I64] = []
    avgs: list[F64] = []
    for tag in dict.fromkeys(tag_ids):
        ts, v = _with_prior(store, tag, span)
        b, a = twa_buckets(ts, v, span.start_ns, span.end_ns, every_ns)
        tags.append(np.full(len(b), tag, dtype=np.int64))
        buckets.append(b)
        avgs.append(a)
    return Buckets(
        np.concatenate(tags).astype(np.int32) if tags else np.empty(0, dtype=np.int32),
        np.concatenate(buckets) if buckets else np.empty(0, dtype=np.int64),
        {"twa": np.concatenate(avgs) if avgs else np.empty(0)},
    )


def runs_of(ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64], max_gap_ns: int) -> Runs:
    """Time-ordered samples of one tag as :class:`Runs` (what ``RUNS_SQL`` computes), in numpy.

    >>> r = runs_of(np.array([0, 1, 2, 9, 10]), np.array([1.0, 1, 2, 2, 2]), 5)
    >>> r.start_ns.tolist(), r.last_ns.tolist(), r.values.tolist()
    ([0, 2, 9], [1, 2, 10], [1.0, 2.0, 2.0])
    """
    if len(ts) == 0:
        return Runs(ts, ts, values)
    same = (values[1:] == values[:-1]) | (np.isnan(values[1:]) & np.isnan(values[:-1]))
    new = np.ones(len(ts), dtype=bool)
    new[1:] = ~same | (np.diff(ts) > max_gap_ns)
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(ts)) - 1
    return Runs(ts[first], ts[last], values[first])


def by_tag(batch: SampleBatch, tag_ids: list[TagId]) -> SampleBatch:
    """``batch`` (of ``tag_ids``) ordered by tag, then time. Rows already in time order
    within each tag (parts each sorted by tag and time, concatenated oldest first) take one
    stable pass by tag, linear for up to 32,767 tags; anything else a full sort.

    >>> b = SampleBatch.from_columns(tag_ids=np.array([1, 2, 1, 2]), ts_ns=np.array([5, 1, 6, 2]), values=np.arange(4.0))
    >>> by_tag(b, [1, 2]).values.tolist()
    [0.0, 2.0, 1.0, 3.0]
    """
    if len(batch) == 0:
        return batch
    ids = np.unique(np.asarray(tag_ids, dtype=np.int64))
    lut = np.zeros(int(ids[-1]) + 1, dtype=np.int16 if len(ids) < 2**15 else np.int32)
    lut[ids] = np.arange(len(ids))
    key = lut[batch.tag_ids]
    order = np.argsort(key, kind="stable")  # a radix sort for int16
    k, ts = key[order], batch.ts_ns[order]
    if ((np.diff(ts) < 0) & (k[1:] == k[:-1])).any():
        order = np.lexsort((batch.ts_ns, key))
    return batch.select(order)
