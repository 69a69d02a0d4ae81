"""Historian on PostgreSQL (psycopg 3): binary COPY in, binary COPY out, versioned schema.

Samples live in ``<schema>.samples``, laid out by a :class:`~genba.historian.postgres._layout.Layout`
object: native range partitions (``partition_days`` each, made as data arrives) or, where the
server offers TimescaleDB (``timescaledb = "auto"``), a hypertable with compression whose tiers
are continuous aggregates. One BRIN index on (tag, time) serves both (each batch is written
sorted by tag, so one tag's rows sit together and a per-tag read skips the other tags' pages).
``<schema>.last_values`` holds each tag's newest sample, upserted with every append in the same
transaction. Appends are one binary ``COPY`` per batch, its payload built from the batch's
columns with numpy (``_copy``); raw reads come back the same way. Schema changes are numbered
migrations (``_schema``), applied in order on start under an advisory lock (``genba db
upgrade`` runs them on their own); the record log is ``<schema>.records``.
"""

from genba.historian.postgres._copy import copy_payload, parse_copy
from genba.historian.postgres._layout import Layout, Partitioned, Timescale
from genba.historian.postgres._schema import MIGRATIONS, PostgresSettings
from genba.historian.postgres._store import PostgresStore

__all__ = [
    "MIGRATIONS",
    "Layout",
    "Partitioned",
    "PostgresSettings",
    "PostgresStore",
    "Timescale",
    "copy_payload",
    "parse_copy",
]
