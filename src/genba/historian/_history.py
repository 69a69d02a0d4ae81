"""History queries as people ask them: by tag path, with times and intervals as text.

Answers are typed and columnar — numpy columns, integer UTC nanoseconds, the :class:`Tag`
itself — so any component can use them; JSON (milliseconds, ``null`` for a missing value) is
made at the edge (``genba.api._views``). The API and the CLI both answer through this one
class, so they cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genba.clock import Clock
from genba.config import RetentionSettings
from genba.errors import QueryError
from genba.historian._derived import resample, time_weighted, value_at
from genba.historian._store import Rollups, Store, TimeRange, check_aggs
from genba.paths import check_pattern, matches
from genba.tags import TagRegistry
from genba.timeparse import parse_duration, parse_range, parse_time
from genba.types import NS_PER_DAY, NS_PER_MS, Quality, SampleBatch, Tag

DEFAULT_SPAN = "1h"
RAW_LIMIT_DEFAULT = 10_000
RAW_LIMIT_MAX = 1_000_000
MAX_BUCKETS = 100_000


def _cursor(after: str | None) -> tuple[int, int] | None:
    """``after`` as given back in ``next``: ``<ts_ns>:<tag_id>``."""
    if after is None:
        return None
    ts, sep, tag = after.partition(":")
    if not sep or not ts.lstrip("-").isdigit() or not tag.isdigit():
        raise QueryError(f"after {after!r} is not a page cursor; pass the 'next' of a page")
    return int(ts), int(tag)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a tag; ``value`` is None for a stale mark (BAD, no value: its source is
    gone) — then ``stale`` says since when (``ts_ns``)."""

    ts_ns: int
    value: float | None
    quality: int

    @property
    def stale(self) -> bool:
        return self.quality >= Quality.BAD

    @classmethod
    def of(cls, batch: SampleBatch, i: int) -> Sample:
        v = float(batch.values[i])
        return cls(int(batch.ts_ns[i]), None if math.isnan(v) else v, int(batch.quality[i]))


@dataclass(frozen=True, slots=True)
class TagState:
    """A tag and its newest sample (None before the first)."""

    tag: Tag
    last: Sample | None


@dataclass(frozen=True, slots=True)
class RawHistory:
    """Raw samples of one tag in ``span``; ``next`` pages on when the answer was cut at the
    limit (pass it as ``after``)."""

    tag: Tag
    span: TimeRange
    batch: SampleBatch
    next: str | None

    @property
    def truncated(self) -> bool:
        return self.next is not None


@dataclass(frozen=True, slots=True)
class BucketHistory:
    """Aggregates of one tag in ``every_ns`` buckets: a column per aggregate (NaN: no sample in
    the bucket), from raw samples or from a downsampling tier (``tier_ns``)."""

    tag: Tag
    span: TimeRange
    every_ns: int
    aggs: list[str]
    bucket_ns: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[np.float64]]
    tier_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Resampled:
    """One tag on a regular grid (NaN where nothing holds yet)."""

    tag: Tag
    span: TimeRange
    method: str
    step_ns: int
    grid_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ValueAt:
    """The sample holding at ``at_ns`` (None: none before it)."""

    tag: Tag
    at_ns: int
    sample: Sample | None


class History:
    """Read side of the historian for one registry and store."""

    def __init__(
        self,
        registry: TagRegistry,
        store: Store,
        clock: Clock,
        retention: Sequence[RetentionSettings] = (),
    ) -> None:
        self.retention = list(retention)
        self.registry = registry
        self.store = store
        self.clock = clock

    def tags(self, pattern: str = "#") -> list[TagState]:
        """Every tag matching ``pattern``, with its last sample (``None`` if it has none)."""
        tags = self.registry.match(check_pattern(pattern))
        last = self.store.last([t.id for t in tags])
        row_of = {int(t): i for i, t in enumerate(last.tag_ids)}
        return [
            TagState(tag, None if (i := row_of.get(tag.id)) is None else Sample.of(last, i))
            for tag in tags
        ]

    def last(self, path: str) -> TagState:
        """The newest sample of one tag."""
        tag = self.registry.get(path)
        last = self.store.last([tag.id])
        return TagState(tag, Sample.of(last, 0) if len(last) else None)

    def span(self, start: str | None, end: str | None) -> TimeRange:
        """``[start, end)`` as everywhere (:func:`genba.timeparse.parse_range`)."""
        return TimeRange(*parse_range(start, end, now_ns=self.clock.now_ns(), default=DEFAULT_SPAN))

    def samples(
        self,
        path: str,
        *,
        start: str | None = None,
        end: str | None = None,
        every: str | None = None,
        agg: str = "avg",
        limit: int | None = None,
        after: str | None = None,
    ) -> RawHistory | BucketHistory:
        """Raw samples of a tag, or time-bucket aggregates when ``every`` is given.

        ``agg`` is one aggregate or several joined by commas (``min,avg,max``); ``twa`` is the
        time-weighted average. A truncated raw answer carries ``next``: pass it as ``after``
        for the following page.
        """
        tag = self.registry.get(path)
        span = self.span(start, end)
        if every is None:
            n = RAW_LIMIT_DEFAULT if limit is None else limit
            if not 0 < n <= RAW_LIMIT_MAX:
                raise QueryError(f"limit must be between 1 and {RAW_LIMIT_MAX}, got {n}.")
            batch = self.store.raw([tag.id], span, limit=n + 1, after=_cursor(after))
            truncated = len(batch) > n
            batch = batch.select(slice(0, n)) if truncated else batch
            cursor = f"{batch.ts_ns[-1]}:{batch.tag_ids[-1]}" if truncated else None
            return RawHistory(tag, span, batch, cursor)
        every_ns = parse_duration(every)
        buckets = (span.end_ns - span.start_ns) // every_ns
        if buckets > MAX_BUCKETS:
            raise QueryError(
                f"{buckets:,} buckets of {every} in this range is more than {MAX_BUCKETS:,}; "
                "choose a larger interval or a shorter range."
            )
        aggs = [a.strip() for a in agg.split(",") if a.strip()]
        tier = self._tier_for(tag, span, every_ns)
        if tier is not None:
            return self._from_tier(tag, span, every_ns, tier, aggs)
        plain = check_aggs([a for a in aggs if a != "twa"]) if aggs != ["twa"] else []
        parts = []
        if plain:
            parts.append(self.store.aggregate([tag.id], span, every_ns=every_ns, aggs=plain))
        if "twa" in aggs:
            parts.append(time_weighted(self.store, [tag.id], span, every_ns))
        times = np.unique(np.concatenate([b.bucket_ns for b in parts]))
        columns: dict[str, npt.NDArray[np.float64]] = {}
        for b in parts:
            at = np.searchsorted(times, b.bucket_ns)
            for name, col in b.columns.items():
                full = np.full(len(times), np.nan)
                full[at] = col
                columns[name] = full
        return BucketHistory(tag, span, every_ns, aggs, times, {a: columns[a] for a in aggs})

    def _tier_for(self, tag: Tag, span: TimeRange, every_ns: int) -> int | None:
        """The bucket size of the finest tier that answers ``every_ns`` buckets over ``span``,
        when raw samples no longer reach back to its start; None: read raw samples."""
        rule = next((r for r in self.retention if matches(r.tags, tag.path)), None)
        if not isinstance(self.store, Rollups):
            return None
        now = self.clock.now_ns()
        if rule is None or span.start_ns >= now - round(rule.raw_days * NS_PER_DAY):
            return None
        fits = [
            t.every_ns
            for t in rule.tiers
            if t.every_ns <= every_ns
            and every_ns % t.every_ns == 0
            and (t.keep_days is None or span.start_ns >= now - round(t.keep_days * NS_PER_DAY))
        ]
        if not fits:
            tiers = ", ".join(t.every for t in rule.tiers) or "none"
            raise QueryError(
                f"raw samples of {tag.path} are kept {rule.raw_days:g} days and no tier (tiers: "
                f"{tiers}) divides {every_ns // NS_PER_MS} ms over this range; query a recent "
                "range, or a multiple of a tier's bucket"
            )
        return min(fits)

    def _from_tier(
        self, tag: Tag, span: TimeRange, every_ns: int, tier_ns: int, aggs: list[str]
    ) -> BucketHistory:
        """Requested aggregates recombined from a tier's buckets (never averaged averages)."""
        if "twa" in aggs:
            raise QueryError("twa needs raw samples; this range is older than they are kept")
        check_aggs(aggs)
        # Tier buckets are whole: a range starting inside one takes all of it.
        start = span.start_ns - span.start_ns % tier_ns
        assert isinstance(self.store, Rollups)  # _tier_for found a tier: the store keeps them
        r = self.store.read_rollup(tier_ns, [tag.id], TimeRange(start, span.end_ns))
        group = r.bucket_ns - np.mod(r.bucket_ns, every_ns)
        times, starts = np.unique(group, return_index=True)
        ends = np.r_[starts[1:], len(group)] - 1
        c = r.columns
        count = np.add.reduceat(c["count"], starts) if len(group) else np.empty(0)
        total = np.add.reduceat(c["sum"], starts) if len(group) else np.empty(0)
        out = {
            "count": count,
            "sum": total,
            "avg": total / np.where(count > 0, count, np.nan),
            "min": np.minimum.reduceat(c["min"], starts) if len(group) else np.empty(0),
            "max": np.maximum.reduceat(c["max"], starts) if len(group) else np.empty(0),
            "first": c["first"][starts],
            "last": c["last"][ends],
        }
        cols = {a: np.asarray(out[a], dtype=np.float64) for a in aggs}
        return BucketHistory(tag, span, every_ns, aggs, times, cols, tier_ns)

    def resample(
        self,
        path: str,
        *,
        step: str,
        method: str = "step",
        start: str | None = None,
        end: str | None = None,
    ) -> Resampled:
        """The tag on a regular grid: the value holding at each step, or interpolated."""
        tag = self.registry.get(path)
        span = self.span(start, end)
        if method not in ("step", "linear"):
            raise QueryError(f"unknown method {method!r}; valid values are: step, linear")
        grid, values = resample(
            self.store,
            tag.id,
            span,
            parse_duration(step),
            "linear" if method == "linear" else "step",
        )
        return Resampled(tag, span, method, parse_duration(step), grid, values)

    def value(self, path: str, at: str) -> ValueAt:
        """The value holding at a time: the tag's last good sample at or before it."""
        tag = self.registry.get(path)
        at_ns = parse_time(at, now_ns=self.clock.now_ns())
        got = value_at(self.store, [tag.id], at_ns)
        return ValueAt(tag, at_ns, Sample.of(got, 0) if len(got) else None)
