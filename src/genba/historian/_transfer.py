"""Export history to Parquet or CSV, and import it back (or from another system).

A file has the columns ``tag`` (path), ``timestamp`` (UTC, nanoseconds), ``value`` and
``quality`` — the same columns ``POST /api/ingest`` takes, so an export imports unchanged and
timestamps survive to the nanosecond. Export reads the range by time a batch at a time (one
sorted pass where the store streams, pages of a million rows where it does not), so a year of
data never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc
import pyarrow.parquet as pq

from genba.errors import QueryError
from genba.historian._store import Store, Streaming, TimeRange
from genba.tags import TagRegistry
from genba.types import SampleBatch

Format = Literal["parquet", "csv"]
SCHEMA = pa.schema(
    [
        ("tag", pa.string()),
        ("timestamp", pa.timestamp("ns", tz="UTC")),
        ("value", pa.float64()),
        ("quality", pa.uint8()),
    ]
)
PAGE = 1_000_000


def as_table(batch: SampleBatch, registry: TagRegistry) -> pa.Table:
    """``batch`` with tag paths and a UTC timestamp column."""
    # Each distinct tag's path looked up once, then taken for every row by Arrow (a Python
    # string a row was half of an export's time).
    ids, rows = np.unique(batch.tag_ids, return_inverse=True)
    paths = pa.array(registry.paths_of(ids.tolist()), pa.string())
    return pa.table(
        {
            "tag": paths.take(pa.array(rows.astype(np.int32))),
            "timestamp": pa.array(batch.ts_ns, pa.timestamp("ns", tz="UTC")),
            "value": pa.array(batch.values, pa.float64()),
            "quality": pa.array(batch.quality, pa.uint8()),
        },
        schema=SCHEMA,
    )


def export_tables(
    store: Store, registry: TagRegistry, pattern: str, span: TimeRange, page: int = PAGE
) -> Iterator[pa.Table]:
    """The samples of the tags matching ``pattern`` in ``span``, by time, a page at a time."""
    ids = [t.id for t in registry.match(pattern)]
    if not ids:
        raise QueryError(f"no tag matches {pattern!r}; `genba tags` lists them")
    if isinstance(store, Streaming):
        for batch in store.stream(ids, span, rows=page):
            yield as_table(batch, registry)
        return
    after: tuple[int, int] | None = None
    while True:
        batch = store.raw(ids, span, limit=page, after=after)
        if not len(batch):
            return
        yield as_table(batch, registry)
        after = (int(batch.ts_ns[-1]), int(batch.tag_ids[-1]))


def write_file(tables: Iterator[pa.Table], path: Path, fmt: Format) -> int:
    """Write the tables to ``path``; the number of rows written."""
    rows = 0
    if fmt == "parquet":
        with pq.ParquetWriter(path, SCHEMA, compression="zstd") as w:
            for t in tables:
                w.write_table(t)
                rows += t.num_rows
            if rows == 0:
                w.write_table(SCHEMA.empty_table())
    elif fmt == "csv":
        with pacsv.CSVWriter(path, SCHEMA) as cw:
            for t in tables:
                cw.write_table(t)
                rows += t.num_rows
    else:
        raise QueryError(f"unknown format {fmt!r}; valid values are: parquet, csv")
    return rows


def read_file(path: Path, chunk_rows: int = 100_000) -> Iterator[bytes]:
    """A Parquet or CSV file as Arrow IPC streams of at most ``chunk_rows`` rows, the form
    ``POST /api/ingest`` (and :func:`genba.node.ingest`) takes."""
    for part in read_tables(path, chunk_rows):
        sink = pa.BufferOutputStream()
        with paipc.new_stream(sink, part.schema) as w:
            w.write_table(part)
        yield sink.getvalue().to_pybytes()


def read_tables(path: Path, chunk_rows: int = 1_000_000) -> Iterator[pa.Table]:
    """A Parquet or CSV file as tables of at most ``chunk_rows`` rows, read as they are used."""
    if not path.exists():
        raise QueryError(f"{path} does not exist")
    if path.suffix.lower() == ".parquet":
        batches: Iterator[pa.RecordBatch] = pq.ParquetFile(
            path, read_dictionary=["tag"]
        ).iter_batches(
            chunk_rows
        )  # tags as a dictionary: each distinct path decoded once, not once a row
    elif path.suffix.lower() == ".csv":
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=8 << 20))
        batches = iter(reader)
    else:
        raise QueryError(f"{path}: import reads .parquet or .csv files")
    for rb in batches:
        for start in range(0, rb.num_rows, chunk_rows):
            yield pa.Table.from_batches([rb.slice(start, chunk_rows)])
