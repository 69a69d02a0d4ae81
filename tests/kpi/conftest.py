"""A store filled from hand-written signals, and the KPIs computed from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba.api._kpi_views import kpi_json, stop_json
from genba.clock import RealClock
from genba.config import parse_config
from genba.historian import Store, StoreSettings, open_store
from genba.kpi import Kpi
from genba.tags import TagRegistry
from genba.types import SampleBatch, TagSpec

NS = 1_000_000_000


def at(text: str) -> int:
    """UTC nanoseconds of an ISO time."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


def steps(
    start: str, pieces: Sequence[tuple[str, float]], end: str
) -> tuple[np.ndarray, np.ndarray]:
    """1 Hz samples of a piecewise-constant signal: (from time, value) pieces until end."""
    a, b = at(start), at(end)
    ts = np.arange(a, b, NS, dtype=np.int64)
    marks = np.array([at(t) for t, _ in pieces], dtype=np.int64)
    vals = np.array([v for _, v in pieces], dtype=float)
    return ts, vals[np.searchsorted(marks, ts, "right") - 1]


Series = tuple[np.ndarray, ...]
"""(times, values) or (times, values, quality) of one tag."""


class JsonKpi:
    """A :class:`Kpi` whose answers are read as the API and ``genba kpi --format json`` send
    them (the typed answers are ``.typed``'s)."""

    def __init__(self, kpi: Kpi) -> None:
        self.typed = kpi

    def oee(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return kpi_json(self.typed.oee(*args, **kw))

    def losses(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return kpi_json(self.typed.losses(*args, **kw))

    def reliability(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return kpi_json(self.typed.reliability(*args, **kw))

    def cost(self, *args: Any, **kw: Any) -> dict[str, Any]:
        return kpi_json(self.typed.cost(*args, **kw))

    def downtime(self, *args: Any, **kw: Any) -> list[dict[str, Any]]:
        return [stop_json(s) for s in self.typed.downtime(*args, **kw)]


MakeKpi = Callable[[str, Mapping[str, Series]], JsonKpi]


@pytest.fixture
def store_kind() -> str:
    """The backend KPIs read from; a test module may override it to run on several."""
    return "duckdb"


@pytest.fixture
def make_kpi(tmp_path: Path, store_kind: str, request: pytest.FixtureRequest) -> Iterator[MakeKpi]:
    stores: list[Store] = []

    def make(config_text: str, series: Mapping[str, Series]) -> JsonKpi:
        config = parse_config(config_text)
        if store_kind == "postgres":
            dsn = request.getfixturevalue("postgres_dsn")
            settings = StoreSettings(kind="postgres", dsn=dsn)
        else:
            settings = StoreSettings(kind="duckdb", path=str(tmp_path / f"kpi{len(stores)}.duckdb"))
        store = open_store(settings, data_dir=tmp_path)
        stores.append(store)
        reg = TagRegistry()
        tags = reg.ensure([TagSpec(p) for p in series])
        store.save_tags(tags)
        for tag, (ts, v, *q) in zip(tags, series.values(), strict=True):
            store.append(
                SampleBatch.from_columns(
                    tag_ids=np.full(len(ts), tag.id, dtype=np.int32),
                    ts_ns=ts,
                    values=v,
                    quality=q[0] if q else None,
                )
            )
        return JsonKpi(Kpi(config, reg, store, RealClock()))

    yield make
    for s in stores:
        s.close()
