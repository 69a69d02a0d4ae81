"""The PostgreSQL store: connections, migrations, COPY in and out, the record log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from genba.config import StoreSettings
from genba.errors import ConfigError, StoreError
from genba.historian._store import (
    ROLLUP,
    RUNS_SQL,
    Buckets,
    Record,
    Runs,
    TimeRange,
    check_aggs,
    check_limit,
    record_filter,
)
from genba.historian.postgres._copy import (
    ROW,
    RUN_ROW,
    CopyRows,
    batch_of,
    copy_payload,
    copy_rows,
    parse_copy,
)
from genba.historian.postgres._layout import LAYOUTS, Layout, Partitioned, Timescale
from genba.historian.postgres._schema import MIGRATIONS, PostgresSettings
from genba.types import Quality, SampleBatch, Tag, TagId, TagSpec

log = logging.getLogger("genba.historian.postgres")
_AGG_SQL = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "count": "count(*)::float8",
    "first": "(array_agg(value ORDER BY ts_ns))[1]",
    "last": "(array_agg(value ORDER BY ts_ns DESC))[1]",
    "sum": "sum(value)",
}


EXPORT_WORK_MEM = "256MB"
"""Sort memory of an export's one ordered read (this transaction only): PostgreSQL's default
4 MB sorts a long range on disk."""


class PostgresStore:
    """Historian on PostgreSQL. See :class:`genba.historian.Store` for the contract."""

    kind: ClassVar[str] = "postgres"
    Settings: ClassVar[type[BaseModel]] = PostgresSettings
    migrations: ClassVar[list[tuple[int, str, str]]] = MIGRATIONS
    """The numbered schema changes, applied in order by :meth:`upgrade`."""

    def __init__(self, settings: PostgresSettings, *, read_only: bool = False) -> None:
        self.s = settings
        self.read_only = read_only
        self.schema = sql.Identifier(settings.schema_name)
        self.lock = threading.Lock()
        """Held by every write, so partitions and tiers are made once."""
        dsn = settings.dsn.get_secret_value()
        try:  # fail fast, with the server's own words, before the pool starts retrying
            psycopg.connect(dsn, connect_timeout=10).close()
        except psycopg.Error as e:
            raise ConfigError(
                f"[store] kind = 'postgres': cannot connect: {str(e).strip()}; check dsn, that "
                "the server runs and that this user may log in"
            ) from None
        options: dict[str, Any] = (
            {"options": "-c default_transaction_read_only=on"} if read_only else {}
        )
        if not settings.prepared_statements:
            options["prepare_threshold"] = None
        self.pool = ConnectionPool(
            dsn, min_size=1, max_size=settings.pool_max, kwargs=options, open=False
        )
        self.pool.open(wait=True, timeout=30)
        self.applied_on_open: list[tuple[int, str]] = [] if read_only else self.upgrade()
        self.layout: Layout = LAYOUTS[self._read_layout()](self)
        self.layout.open()

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, data_dir: Path, read_only: bool) -> Self:
        try:
            own = PostgresSettings.model_validate(settings.backend_options())
        except ValueError as e:
            raise ConfigError(f"[store] kind = 'postgres': {e}") from None
        return cls(own, read_only=read_only)

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool."""
        with self.pool.connection() as conn:
            yield conn

    # -- schema ---------------------------------------------------------------------------
    def _meta(self, conn: psycopg.Connection[Any], key: str) -> str | None:
        """``key`` of ``genba_meta`` (None when unset, or before the first upgrade)."""
        table = f"{self.s.schema_name}.genba_meta"
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
            return None
        row = conn.execute(
            sql.SQL("SELECT value FROM {}.genba_meta WHERE key = %s").format(self.schema), (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def schema_version(self) -> int:
        with self.conn() as conn:
            version = self._meta(conn, "schema_version")
            conn.rollback()
        return int(version or 0)

    def upgrade(self) -> list[tuple[int, str]]:
        """Apply the migrations this database lacks, in order, in one transaction."""
        applied: list[tuple[int, str]] = []
        with self.conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('genba schema'))")
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(self.schema))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.genba_meta (key text PRIMARY KEY, value text)"
                ).format(self.schema)
            )
            version = int(self._meta(conn, "schema_version") or 0)
            for number, what, ddl in self.migrations:
                if number <= version:
                    continue
                conn.execute(sql.SQL(ddl.replace("{s}", "{schema}")).format(schema=self.schema))
                applied.append((number, what))
                version = number
            if Timescale.wanted(self, conn, self._meta(conn, "layout")) and Timescale.convert(
                self, conn
            ):
                applied.append((0, "samples moved into a TimescaleDB hypertable"))  # 0: no number
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.genba_meta VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ).format(self.schema),
                (str(version),),
            )
        for number, what in applied:
            log.info("postgres: applied %s", f"migration {number}: {what}" if number else what)
        return applied

    def _read_layout(self) -> str:
        with self.conn() as conn:
            layout = self._meta(conn, "layout")
            conn.rollback()
        return layout or Partitioned.name

    # -- writes ---------------------------------------------------------------------------
    def append(self, batch: SampleBatch) -> None:
        if not len(batch):
            return
        # Rows of one tag side by side: the BRIN on tag_id then skips the other tags' pages.
        order = np.lexsort((batch.ts_ns, batch.tag_ids))
        batch = SampleBatch(
            batch.tag_ids[order], batch.ts_ns[order], batch.values[order], batch.quality[order]
        )
        payload = copy_payload(batch)
        newest = _newest_per_tag(batch)
        with self.lock, self.conn() as conn, conn.transaction():
            self.layout.prepare(conn, batch.ts_ns)
            with conn.cursor() as cur:
                copy_sql = sql.SQL(
                    "COPY {}.{} (tag_id, ts_ns, value, quality) FROM STDIN (FORMAT BINARY)"
                ).format(self.schema, sql.Identifier(self.layout.target(batch.ts_ns)))
                with cur.copy(copy_sql) as copy:
                    copy.write(payload)
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {s}.last_values "
                        "SELECT * FROM unnest(%s::int4[], %s::int8[], %s::float8[], %s::int2[]) "
                        "ON CONFLICT (tag_id) DO UPDATE SET ts_ns = excluded.ts_ns, "
                        "value = excluded.value, quality = excluded.quality "
                        "WHERE excluded.ts_ns >= {s}.last_values.ts_ns"
                    ).format(s=self.schema),
                    (
                        newest.tag_ids.tolist(),
                        newest.ts_ns.tolist(),
                        newest.values.tolist(),
                        newest.quality.astype(np.int16).tolist(),
                    ),
                )

    def save_tags(self, tags: list[Tag]) -> None:
        if not tags:
            return
        with self.conn() as conn, conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {s}.tags SELECT * FROM unnest("
                    "%s::int4[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[]) "
                    "ON CONFLICT (id) DO UPDATE SET path = excluded.path, unit = excluded.unit, "
                    "description = excluded.description, low = excluded.low, high = excluded.high"
                ).format(s=self.schema),
                (
                    [t.id for t in tags],
                    [t.path for t in tags],
                    [t.spec.unit for t in tags],
                    [t.spec.description for t in tags],
                    [t.spec.low for t in tags],
                    [t.spec.high for t in tags],
                ),
            )

    # -- reads ----------------------------------------------------------------------------
    def load_tags(self) -> list[Tag]:
        with self.conn() as conn:
            rows = conn.execute(
                sql.SQL("SELECT * FROM {}.tags ORDER BY id").format(self.schema)
            ).fetchall()
        return [Tag(r[0], TagSpec(r[1], r[2], r[3], r[4], r[5])) for r in rows]

    def _copy_bytes(self, query: sql.Composable) -> bytes:
        """The result of ``query`` in PostgreSQL's binary COPY format."""
        with self.conn() as conn, conn.cursor() as cur:
            out = bytearray()
            with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)) as copy:
                for chunk in copy:
                    out += chunk
            conn.rollback()
        return bytes(out)

    def _copy_out(self, query: sql.Composable) -> SampleBatch:
        return parse_copy(self._copy_bytes(query))

    def stream(
        self, tag_ids: list[TagId], span: TimeRange, *, rows: int = 1_000_000
    ) -> Iterator[SampleBatch]:
        """One ordered binary ``COPY`` of the range, decoded ``rows`` at a time as it
        arrives; pages of :meth:`raw` would each sort the range again from the cursor."""
        query = self._range_query(tag_ids, span, sql.SQL(""))
        reader = CopyRows(ROW, rows=rows)
        with self.conn() as conn, conn.cursor() as cur:
            cur.execute(f"SET LOCAL work_mem = '{EXPORT_WORK_MEM}'")
            with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)) as copy:
                for chunk in copy:
                    for block in reader.feed(chunk):
                        yield batch_of(block)
            conn.rollback()
        for block in reader.finish():
            yield batch_of(block)

    def _range_query(
        self,
        tag_ids: list[TagId],
        span: TimeRange,
        page: sql.Composable,
        order: str = "ts_ns, tag_id",
    ) -> sql.Composable:
        return sql.SQL(
            "SELECT tag_id, ts_ns, value, quality FROM {s}.samples WHERE tag_id = ANY({ids}::int4[])"
            " AND ts_ns >= {a} AND ts_ns < {b}{page} ORDER BY {order}"
        ).format(
            order=sql.SQL(order),
            s=self.schema,
            ids=sql.Literal(list(tag_ids)),
            a=sql.Literal(span.start_ns),
            b=sql.Literal(span.end_ns),
            page=page,
        )

    def raw(
        self,
        tag_ids: list[TagId],
        span: TimeRange,
        *,
        limit: int | None = None,
        after: tuple[int, TagId] | None = None,
    ) -> SampleBatch:
        page = (
            sql.SQL(" AND (ts_ns, tag_id) > ({}, {})").format(
                sql.Literal(int(after[0])), sql.Literal(int(after[1]))
            )
            if after is not None
            else sql.SQL("")
        )
        query = self._range_query(tag_ids, span, page)
        if limit is not None:
            query = sql.SQL("{} LIMIT {}").format(query, sql.Literal(int(limit)))
        return self._copy_out(query)

    def raw_by_tag(self, tag_ids: list[TagId], span: TimeRange) -> SampleBatch:
        return self._copy_out(self._range_query(tag_ids, span, sql.SQL(""), "tag_id, ts_ns"))

    def runs(self, tag_id: TagId, span: TimeRange, *, max_gap_ns: int) -> Runs:
        query = sql.SQL(RUNS_SQL).format(
            bad=sql.Literal(int(Quality.BAD)),
            gap=sql.Literal(int(max_gap_ns)),
            samples=sql.SQL("{}.samples").format(self.schema),
            tag=sql.Literal(int(tag_id)),
            a=sql.Literal(span.start_ns),
            b=sql.Literal(span.end_ns),
        )
        rows = copy_rows(self._copy_bytes(query), RUN_ROW)
        return Runs(
            rows["s"].astype(np.int64), rows["l"].astype(np.int64), rows["val"].astype(np.float64)
        )

    def aggregate(
        self, tag_ids: list[TagId], span: TimeRange, *, every_ns: int, aggs: list[str]
    ) -> Buckets:
        check_aggs(aggs)
        exprs = sql.SQL(", ").join(sql.SQL(_AGG_SQL[a]) for a in aggs)
        query = sql.SQL(
            "SELECT tag_id, ts_ns - (((ts_ns %% %(e)s) + %(e)s) %% %(e)s) AS bucket, {} "
            "FROM {}.samples WHERE tag_id = ANY(%(ids)s::int4[]) AND ts_ns >= %(a)s AND ts_ns < %(b)s "
            "AND quality < {} GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(exprs, self.schema, sql.Literal(int(Quality.BAD)))
        params = {"e": every_ns, "ids": list(tag_ids), "a": span.start_ns, "b": span.end_ns}
        with self.conn() as conn:
            rows = conn.execute(query, params).fetchall()
            conn.rollback()
        return _buckets(rows, aggs)

    def last(self, tag_ids: list[TagId] | None = None) -> SampleBatch:
        where = (
            sql.SQL("") if tag_ids is None
            else sql.SQL(" WHERE tag_id = ANY({}::int4[])").format(sql.Literal(list(tag_ids)))
        )  # fmt: skip
        query = sql.SQL(
            "SELECT tag_id, ts_ns, value, quality FROM {}.last_values{} ORDER BY tag_id"
        ).format(self.schema, where)
        return self._copy_out(query)

    def compact(self) -> int:
        """Lay closed time ranges out for reading by tag (see the layouts); the number of
        tables rewritten."""
        if self.read_only:
            raise StoreError("the postgres store is open read-only: nothing to compact")
        return self.layout.compact()

    def delete_before(self, tag_ids: list[TagId], before_ns: int) -> int:
        if not tag_ids:
            return 0
        with self.lock, self.conn() as conn, conn.transaction():
            cur = conn.execute(
                sql.SQL(
                    "DELETE FROM {}.samples WHERE tag_id = ANY(%s::int4[]) AND ts_ns < %s"
                ).format(self.schema),
                (list(tag_ids), before_ns),
            )
            return cur.rowcount

    def roll_up(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> None:
        self.layout.roll_up(every_ns, tag_ids, span)

    def read_rollup(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> Buckets:
        tier = self.layout.tier(every_ns)
        rows: list[tuple[Any, ...]] = []
        if tier is not None:
            with self.conn() as conn:
                rows = conn.execute(
                    sql.SQL(
                        "SELECT tag_id, bucket_ns, count, sum, min, max, first, last FROM {} "
                        "WHERE {}tag_id = ANY(%s::int4[]) AND bucket_ns >= %s "
                        "AND bucket_ns < %s ORDER BY tag_id, bucket_ns"
                    ).format(*tier),
                    (list(tag_ids), span.start_ns, span.end_ns),
                ).fetchall()
                conn.rollback()
        return _buckets(rows, list(ROLLUP))

    def rollup_end(self, every_ns: int, tag_ids: list[TagId]) -> int | None:
        tier = self.layout.tier(every_ns)
        if tier is None:
            return None
        with self.conn() as conn:
            row = conn.execute(
                sql.SQL("SELECT max(bucket_ns) FROM {} WHERE {}tag_id = ANY(%s::int4[])").format(
                    *tier
                ),
                (list(tag_ids),),
            ).fetchone()
            conn.rollback()
        return None if not row or row[0] is None else int(row[0])

    def delete_rollup_before(self, every_ns: int, tag_ids: list[TagId], before_ns: int) -> int:
        tier = self.layout.tier(every_ns)
        if not tag_ids or tier is None:
            return 0
        relation, condition = tier
        with self.lock, self.conn() as conn, conn.transaction():
            relation = self.layout.tier_rows(conn, every_ns, relation)
            cur = conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE {}tag_id = ANY(%s::int4[]) AND bucket_ns < %s"
                ).format(relation, condition),
                (list(tag_ids), before_ns),
            )
            return cur.rowcount

    # -- record log ---------------------------------------------------------------------
    def append_records(self, records: list[Record]) -> list[int]:
        if not records:
            return []
        bodies = [r.encoded() for r in records]
        with self.conn() as conn, conn.transaction():
            # One appender at a time, so sequence numbers are committed in order: a reader
            # tailing by seq never misses a record committed after it read a later one.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('genba records'))")
            rows = conn.execute(
                sql.SQL(
                    "INSERT INTO {}.records (kind, ts_ns, key, body) "
                    "SELECT * FROM unnest(%s::text[], %s::int8[], %s::text[], %s::jsonb[]) "
                    "RETURNING seq"
                ).format(self.schema),
                ([r.kind for r in records], [r.ts_ns for r in records],
                 [r.key for r in records], bodies),
            ).fetchall()  # fmt: skip
        return sorted(int(r[0]) for r in rows)

    def records(
        self,
        kind: str,
        *,
        key: str | None = None,
        span: TimeRange | None = None,
        after_seq: int = 0,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[Record]:
        where, params = record_filter(kind, key, span, after_seq, "%({})s")
        query = sql.SQL(
            "SELECT seq, kind, ts_ns, key, body FROM {}.records WHERE "
            + where
            + f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT {check_limit(limit)}"
        ).format(self.schema)
        with self.conn() as conn:
            rows = conn.execute(query, params).fetchall()
            conn.rollback()
        return [Record(kind=k, ts_ns=t, key=key_, body=b, seq=q) for q, k, t, key_, b in rows]

    def count(self) -> int:
        with self.conn() as conn:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.samples").format(self.schema)
            ).fetchone()
            conn.rollback()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.pool.close()


def _buckets(rows: list[tuple[Any, ...]], names: list[str]) -> Buckets:
    """Rows of (tag_id, bucket_ns, one value per name) as columns."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * (2 + len(names))
    return Buckets(
        np.asarray(cols[0], dtype=np.int32),
        np.asarray(cols[1], dtype=np.int64),
        {n: np.asarray(cols[2 + i], dtype=np.float64) for i, n in enumerate(names)},
    )


def _newest_per_tag(batch: SampleBatch) -> SampleBatch:
    """Each tag's newest sample in ``batch``, which is sorted by tag, then time."""
    rows = np.flatnonzero(np.diff(batch.tag_ids, append=np.int32(-1)) != 0)
    return SampleBatch(
        batch.tag_ids[rows], batch.ts_ns[rows], batch.values[rows], batch.quality[rows]
    )
