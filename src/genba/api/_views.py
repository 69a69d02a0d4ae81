"""History answers as JSON, and the response models that describe them in ``/openapi.json``.

:class:`~genba.historian.History` answers with typed, columnar results (integer UTC nanoseconds,
NaN for no value); here they become what the API has always sent: milliseconds since the
epoch, ``null`` for a missing value, one list per column. The CLI's store-backed source uses
the same functions, so a query reads the same with a node running or not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genba.historian import BucketHistory, RawHistory, Resampled, Sample, TagState, ValueAt
from genba.types import NS_PER_MS


class Columns(JSONResponse):
    """A JSON answer of long columns, encoded by orjson as built (NaN → null)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _nullable(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]


def _ms(ns: npt.NDArray[np.int64]) -> list[int]:
    return (ns // NS_PER_MS).tolist()  # type: ignore[no-any-return]


def sample_json(s: Sample) -> dict[str, Any]:
    return {"ts_ms": s.ts_ns // NS_PER_MS, "value": s.value, "quality": s.quality, "stale": s.stale}


def tag_json(t: TagState) -> dict[str, Any]:
    spec = t.tag.spec
    return {
        "path": spec.path,
        "id": t.tag.id,
        "unit": spec.unit,
        "description": spec.description,
        "low": spec.low,
        "high": spec.high,
        "last": None if t.last is None else sample_json(t.last),
    }


def last_json(t: TagState) -> dict[str, Any]:
    head = {"path": t.tag.path, "unit": t.tag.spec.unit}
    if t.last is None:
        return head | {"ts_ms": None, "value": None, "quality": None}
    return head | sample_json(t.last)


def history_json(h: RawHistory | BucketHistory) -> dict[str, Any]:
    head: dict[str, Any] = {
        "path": h.tag.path,
        "unit": h.tag.spec.unit,
        "start_ms": h.span.start_ns // NS_PER_MS,
        "end_ms": h.span.end_ns // NS_PER_MS,
    }
    if isinstance(h, RawHistory):
        return head | {
            "truncated": h.truncated,
            "next": h.next,
            "ts_ms": _ms(h.batch.ts_ns),
            "value": h.batch.values.tolist(),
            "quality": h.batch.quality.tolist(),
        }
    head |= {"every_ms": h.every_ns // NS_PER_MS, "aggs": h.aggs}
    if h.tier_ns is not None:
        head["source"] = f"tier {h.tier_ns // NS_PER_MS} ms"
    return head | {"ts_ms": _ms(h.bucket_ns)} | {a: _nullable(h.columns[a]) for a in h.aggs}


def resampled_json(r: Resampled) -> dict[str, Any]:
    return {
        "path": r.tag.path,
        "unit": r.tag.spec.unit,
        "method": r.method,
        "step_ms": r.step_ns // NS_PER_MS,
        "ts_ms": _ms(r.grid_ns),
        "value": _nullable(r.values),
    }


def value_json(v: ValueAt) -> dict[str, Any]:
    return {
        "path": v.tag.path,
        "unit": v.tag.spec.unit,
        "at_ms": v.at_ns // NS_PER_MS,
        "sample": None if v.sample is None else sample_json(v.sample),
    }


# -- response models ----------------------------------------------------------------------
class SampleOut(BaseModel):
    ts_ms: int = Field(description="UTC milliseconds since the epoch.")
    value: float | None = Field(description="null for a stale mark (its source is gone).")
    quality: int = Field(description="OPC UA severity bits: 0 good, 1 uncertain, 2 bad.")
    stale: bool


class TagOut(BaseModel):
    path: str
    id: int
    unit: str
    description: str
    low: float | None
    high: float | None
    last: SampleOut | None


class LastOut(BaseModel):
    """The newest sample; ``ts_ms``, ``value`` and ``quality`` null before the first."""

    model_config = ConfigDict(extra="allow")  # stale, when there is a sample

    path: str
    unit: str
    ts_ms: int | None
    value: float | None
    quality: int | None


class RawSamplesOut(BaseModel):
    """Raw samples, one list per column."""

    path: str
    unit: str
    start_ms: int
    end_ms: int
    truncated: bool
    next: str | None = Field(description="Cursor of the next page (pass as after), or null.")
    ts_ms: list[int]
    value: list[float | None]
    quality: list[int]


class BucketsOut(BaseModel):
    """Time-bucket aggregates: ``ts_ms`` and one list per aggregate in ``aggs`` (avg, min, max,
    count, first, last, sum, twa), null where a bucket has no sample; ``source`` ('tier N
    ms') when read from a downsampling tier."""

    model_config = ConfigDict(extra="allow")

    path: str
    unit: str
    start_ms: int
    end_ms: int
    every_ms: int
    aggs: list[str]
    ts_ms: list[int]


class ResampledOut(BaseModel):
    path: str
    unit: str
    method: str
    step_ms: int
    ts_ms: list[int]
    value: list[float | None]


class ValueOut(BaseModel):
    path: str
    unit: str
    at_ms: int
    sample: SampleOut | None
