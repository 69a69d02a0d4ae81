"""Core types every layer shares: tag ids, quality codes, columnar sample batches, events.

A :class:`SampleBatch` is four aligned numpy columns. Nothing on the hot path holds a
Python object per reading.

>>> import numpy as np
>>> b = SampleBatch.from_columns(tag_ids=[1, 2], ts_ns=[10, 10], values=[0.5, 7.0])
>>> len(b), b.values.dtype.name, b.quality.tolist()
(2, 'float64', [0, 0])
>>> b.select(b.tag_ids == 2).values.tolist()
[7.0]
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

TagId = int
"""Integer id of a tag, stable for the life of a store (see :class:`genba.tags.TagRegistry`)."""

TAG_ID_DTYPE = np.dtype(np.int32)
TS_DTYPE = np.dtype(np.int64)
VALUE_DTYPE = np.dtype(np.float64)
QUALITY_DTYPE = np.dtype(np.uint8)

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_HOUR = 3600 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S


class Quality(enum.IntEnum):
    """Quality of a sample, after the severity bits of an OPC UA StatusCode (Part 4, 7.34)."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Samples as aligned columns: tag id, UTC time in integer nanoseconds, value, quality."""

    tag_ids: npt.NDArray[np.int32]
    ts_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    quality: npt.NDArray[np.uint8]

    def __post_init__(self) -> None:
        n = len(self.tag_ids)
        for name, dtype in (
            ("tag_ids", TAG_ID_DTYPE),
            ("ts_ns", TS_DTYPE),
            ("values", VALUE_DTYPE),
            ("quality", QUALITY_DTYPE),
        ):
            col = getattr(self, name)
            if col.dtype != dtype or col.ndim != 1:
                raise TypeError(
                    f"SampleBatch.{name} must be a 1-D {dtype} array, got {col.ndim}-D {col.dtype}"
                    f"; build batches with SampleBatch.from_columns() to convert."
                )
            if len(col) != n:
                raise ValueError(
                    f"SampleBatch columns differ in length: tag_ids has {n}, {name} has {len(col)}"
                )

    @classmethod
    def from_columns(
        cls,
        *,
        tag_ids: npt.ArrayLike,
        ts_ns: npt.ArrayLike,
        values: npt.ArrayLike,
        quality: npt.ArrayLike | None = None,
    ) -> SampleBatch:
        """Build a batch, converting each column to its dtype (no copy when it already is)."""
        t = np.asarray(tag_ids, dtype=TAG_ID_DTYPE)
        q = (
            np.zeros(len(t), dtype=QUALITY_DTYPE)
            if quality is None
            else np.asarray(quality, dtype=QUALITY_DTYPE)
        )
        return cls(t, np.asarray(ts_ns, dtype=TS_DTYPE), np.asarray(values, dtype=VALUE_DTYPE), q)

    @classmethod
    def empty(cls) -> SampleBatch:
        return cls.from_columns(tag_ids=[], ts_ns=[], values=[])

    @classmethod
    def stale_marks(cls, tag_ids: npt.ArrayLike, at_ns: int) -> SampleBatch:
        """A stale mark for each tag at ``at_ns``: BAD, no value — what the tag last said no
        longer holds (its source is gone; docs/kpi.md).

        >>> SampleBatch.stale_marks([3, 4], 10).quality.tolist()
        [2, 2]
        """
        ids = np.asarray(tag_ids, dtype=TAG_ID_DTYPE)
        n = len(ids)
        return cls(
            ids,
            np.full(n, at_ns, dtype=TS_DTYPE),
            np.full(n, np.nan),
            np.full(n, Quality.BAD, dtype=QUALITY_DTYPE),
        )

    @classmethod
    def concat(cls, batches: Sequence[SampleBatch]) -> SampleBatch:
        """One batch holding all rows of ``batches`` in order."""
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        return cls(
            np.concatenate([b.tag_ids for b in batches]),
            np.concatenate([b.ts_ns for b in batches]),
            np.concatenate([b.values for b in batches]),
            np.concatenate([b.quality for b in batches]),
        )

    def __len__(self) -> int:
        return len(self.tag_ids)

    def to_arrow(self) -> pa.Table:
        """The four columns as an Arrow table (``tag_id``, ``ts_ns``, ``value``, ``quality``),
        zero-copy: what the stores and the spool write.

        >>> b = SampleBatch.from_columns(tag_ids=[1], ts_ns=[5], values=[2.5])
        >>> SampleBatch.from_arrow(b.to_arrow()).values.tolist()
        [2.5]
        """
        return pa.table(
            {
                "tag_id": self.tag_ids,
                "ts_ns": self.ts_ns,
                "value": self.values,
                "quality": self.quality,
            }
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> SampleBatch:
        """A batch from a table with the columns :meth:`to_arrow` writes."""
        return cls.from_columns(
            tag_ids=table["tag_id"].to_numpy(),
            ts_ns=table["ts_ns"].to_numpy(),
            values=table["value"].to_numpy(),
            quality=table["quality"].to_numpy(),
        )

    def select(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice) -> SampleBatch:
        """The rows picked by a boolean mask, an index array or a slice."""
        return SampleBatch(
            self.tag_ids[rows], self.ts_ns[rows], self.values[rows], self.quality[rows]
        )


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at one time: a connector going down, a state change.

    Events are rare next to samples, so a Python object each is fine.
    """

    topic: str
    ts_ns: int
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Command(Event):
    """A request on the bus to write ``value`` to the tag whose path is ``topic``: the node's
    write path hands it to the connector that owns the tag and reads the value back.
    ``origin`` says who asked (``api``, ``cli``, a component's name), ``id`` names the request
    in its result."""

    kind: str = "command"
    value: float = 0.0
    origin: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class TagSpec:
    """What a tag is: its unified-namespace path and its meaning.

    ``unit`` is a UCUM-style unit string (``degC``, ``A``, ``mm/s``, ``1`` for counts).
    ``low`` / ``high`` are the engineering limits used by alarms and charts.
    """

    path: str
    unit: str = ""
    description: str = ""
    low: float | None = None
    high: float | None = None

    def merged(self, other: TagSpec) -> TagSpec:
        """This spec with every field ``other`` leaves empty filled from ``self``."""
        return TagSpec(
            path=self.path,
            unit=other.unit or self.unit,
            description=other.description or self.description,
            low=other.low if other.low is not None else self.low,
            high=other.high if other.high is not None else self.high,
        )


@dataclass(frozen=True, slots=True)
class Tag:
    """A registered tag: a :class:`TagSpec` with its id."""

    id: TagId
    spec: TagSpec

    @property
    def path(self) -> str:
        return self.spec.path


def as_specs(items: Iterable[TagSpec | str]) -> list[TagSpec]:
    """Accept paths or specs; return specs."""
    return [TagSpec(i) if isinstance(i, str) else i for i in items]
