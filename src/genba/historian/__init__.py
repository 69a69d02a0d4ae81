"""The historian: where a node keeps what it collects, and how it is read back.

One place for every part of it:

* the :class:`Store` contract and its backends (``genba.stores`` entry points: DuckDB, one
  file, by default; PostgreSQL / TimescaleDB), with :class:`Rollups` an optional capability;
* the append-only **record log** on the same store (:class:`Record`, :class:`RecordLog`):
  events, commands, alarm history and rules, dead letters;
* the node components: the one that writes the bus into the store (:class:`HistorianWriter`,
  with its store-and-forward :class:`Spool` and redelivery filter), :class:`Retention`, and
  :class:`Compaction`, which lays history out for reading by tag;
* the queries the API and CLI answer with (:class:`History` and its typed results);
* export to and import from CSV / Parquet / Arrow (:func:`export_tables`, :func:`read_file`).
"""

from genba.config import StoreSettings
from genba.historian._compaction import Compaction
from genba.historian._derived import last_before, resample, runs_of, time_weighted, value_at
from genba.historian._history import (
    BucketHistory,
    History,
    RawHistory,
    Resampled,
    Sample,
    TagState,
    ValueAt,
)
from genba.historian._records import RecordLog
from genba.historian._retention import Retention
from genba.historian._spool import Spool
from genba.historian._store import (
    AGGREGATES,
    ROLLUP,
    Buckets,
    Compacting,
    Record,
    Rollups,
    Runs,
    Store,
    Streaming,
    TimeRange,
    check_aggs,
    open_store,
)
from genba.historian._transfer import as_table, export_tables, read_file, read_tables, write_file
from genba.historian._writer import HistorianWriter, WriterStats

__all__ = [
    "AGGREGATES",
    "ROLLUP",
    "BucketHistory",
    "Buckets",
    "Compacting",
    "Compaction",
    "HistorianWriter",
    "History",
    "RawHistory",
    "Record",
    "RecordLog",
    "Resampled",
    "Retention",
    "Rollups",
    "Runs",
    "Sample",
    "Spool",
    "Store",
    "StoreSettings",
    "Streaming",
    "TagState",
    "TimeRange",
    "ValueAt",
    "WriterStats",
    "as_table",
    "check_aggs",
    "export_tables",
    "last_before",
    "open_store",
    "read_file",
    "read_tables",
    "resample",
    "runs_of",
    "time_weighted",
    "value_at",
    "write_file",
]
