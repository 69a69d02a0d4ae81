"""How ``<schema>.samples`` is laid out on the server: an object per layout, not a branch.

The store asks its layout where a batch goes (:meth:`Layout.prepare`, :meth:`Layout.target`),
how a downsampling tier is made (:meth:`Layout.roll_up`) and where it is read and deleted
(:meth:`Layout.tier`, :meth:`Layout.tier_rows`). Two layouts exist:

* :class:`Partitioned` — native range partitions of ``partition_days``, made as data arrives;
  tiers are rows of ``<schema>.rollups`` that genba writes;
* :class:`Timescale` — a TimescaleDB hypertable (chunks of ``partition_days``, compressed after
  ``compress_after_days``, segmented by tag); each tier is a continuous aggregate
  ``rollup_<every_ns>`` that TimescaleDB materialises.

The layout in use is kept in ``genba_meta`` (key ``layout``); :meth:`Timescale.convert` moves a
partitioned database into a hypertable once, inside the upgrade's transaction.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from genba.errors import ConfigError
from genba.historian._store import ROLLUP, TimeRange
from genba.types import NS_PER_DAY, Quality, TagId

if TYPE_CHECKING:
    from genba.historian.postgres._store import PostgresStore

log = logging.getLogger("genba.historian.postgres")

Conn = psycopg.Connection[Any]
Tier = tuple[sql.Composable, sql.Composable]
"""Where a tier is read: (relation, a condition to AND in front of the others)."""


class Layout(Protocol):
    name: ClassVar[str]
    """Its value in ``genba_meta``."""

    def open(self) -> None:
        """Learn what the database holds (called once the schema is current)."""

    def prepare(self, conn: Conn, ts_ns: npt.NDArray[np.int64]) -> None:
        """Make room for rows at ``ts_ns`` (in the append's transaction)."""

    def target(self, ts_ns: npt.NDArray[np.int64]) -> str:
        """The table a batch with these times is copied into."""

    def roll_up(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> None:
        """Make (or refresh) the ``every_ns`` tier over ``span``."""

    def tier(self, every_ns: int) -> Tier | None:
        """Where the ``every_ns`` tier is read; None while it has none."""

    def tier_rows(self, conn: Conn, every_ns: int, relation: sql.Composable) -> sql.Composable:
        """The relation that holds the tier's rows, for a DELETE."""

    def compact(self) -> int:
        """Lay closed time ranges out for reading by tag; the number of tables rewritten."""


class Partitioned:
    """Native range partitions, one table per ``partition_days``."""

    name: ClassVar[str] = "partitioned"

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.width_ns = store.s.partition_days * NS_PER_DAY
        self.partitions: set[int] = set()
        self.sorted: set[int] = set()
        """Partitions rewritten in (tag, time) order with nothing appended since."""

    def open(self) -> None:
        with self.store.conn() as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n "
                "ON n.oid = p.relnamespace WHERE p.relname = 'samples' AND n.nspname = %s",
                (self.store.s.schema_name,),
            ).fetchall()
        for (name,) in rows:
            m = re.fullmatch(r"samples_p(m?)(\d+)", name)
            if m:
                self.partitions.add(-int(m.group(2)) if m.group(1) else int(m.group(2)))
        with self.store.conn() as conn:
            keys = conn.execute(
                sql.SQL("SELECT key FROM {}.genba_meta WHERE key LIKE 'sorted:%%'").format(
                    self.store.schema
                )
            ).fetchall()
            conn.rollback()
        self.sorted = {int(k.removeprefix("sorted:")) for (k,) in keys}

    def prepare(self, conn: Conn, ts_ns: npt.NDArray[np.int64]) -> None:
        written = set(np.unique(ts_ns // self.width_ns).tolist())
        needed = written - self.partitions
        for p in sorted(needed):
            ddl = sql.SQL(
                "CREATE TABLE IF NOT EXISTS {s}.{name} PARTITION OF {s}.samples "
                "FOR VALUES FROM ({start}) TO ({end})"
            )
            conn.execute(
                ddl.format(
                    s=self.store.schema,
                    name=sql.Identifier(partition_table(p)),
                    start=sql.Literal(p * self.width_ns),
                    end=sql.Literal((p + 1) * self.width_ns),
                )
            )
        self.partitions |= needed
        touched = written & self.sorted
        if touched:  # late data in a sorted partition: sort it again at the next compaction
            conn.execute(
                sql.SQL("DELETE FROM {}.genba_meta WHERE key = ANY(%s)").format(self.store.schema),
                ([f"sorted:{p}" for p in touched],),
            )
            self.sorted -= touched

    def compact(self) -> int:
        """Rewrite every partition but the newest, once it is closed, in (tag, time) order: a
        tag's rows then sit in a few pages, and the BRIN on (tag_id, ts_ns) finds just those.
        Writes to that partition wait meanwhile (late data is rare); reads go on until the
        moment the sorted table takes its place."""
        if not self.partitions:
            return 0
        closed = sorted(self.partitions - self.sorted - {max(self.partitions)})
        for p in closed:
            self._sort(p)
        return len(closed)

    def _sort(self, p: int) -> None:
        store, part = self.store, partition_table(p)
        names = {
            "s": store.schema,
            "part": sql.Identifier(part),
            "tmp": sql.Identifier(f"{part}_sorting"),
            "check": sql.Identifier(f"{part}_range"),
            "a": sql.Literal(p * self.width_ns),
            "b": sql.Literal((p + 1) * self.width_ns),
        }
        with store.conn() as conn, conn.transaction():
            for statement in _SORT_PARTITION:
                conn.execute(sql.SQL(statement).format(**names))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.genba_meta VALUES (%s, 'yes') ON CONFLICT (key) DO NOTHING"
                ).format(store.schema),
                (f"sorted:{p}",),
            )
        self.sorted.add(p)
        log.info("postgres: partition %s rewritten in (tag, time) order", part)

    def target(self, ts_ns: npt.NDArray[np.int64]) -> str:
        """The partition itself when every row falls in one (no per-row routing), else the
        partitioned table."""
        first, last = int(ts_ns.min()) // self.width_ns, int(ts_ns.max()) // self.width_ns
        return "samples" if first != last else partition_table(first)

    def roll_up(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> None:
        store = self.store
        rollup = store.aggregate(tag_ids, span, every_ns=every_ns, aggs=list(ROLLUP))
        if not len(rollup):
            return
        cols = [rollup.columns[c].tolist() for c in ROLLUP]
        with store.lock, store.conn() as conn, conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.rollups SELECT %s, * FROM unnest(%s::int4[], %s::int8[], "
                    "%s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], "
                    "%s::float8[]) ON CONFLICT (every_ns, tag_id, bucket_ns) DO UPDATE SET "
                    "count = excluded.count, sum = excluded.sum, min = excluded.min, "
                    "max = excluded.max, first = excluded.first, last = excluded.last"
                ).format(store.schema),
                (every_ns, rollup.tag_ids.tolist(), rollup.bucket_ns.tolist(), *cols),
            )

    def tier(self, every_ns: int) -> Tier | None:
        return (
            sql.SQL("{}.rollups").format(self.store.schema),
            sql.SQL("every_ns = {} AND ").format(sql.Literal(every_ns)),
        )

    def tier_rows(self, conn: Conn, every_ns: int, relation: sql.Composable) -> sql.Composable:
        return relation


class Timescale:
    """A TimescaleDB hypertable with compression; tiers are continuous aggregates."""

    name: ClassVar[str] = "timescaledb"

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def open(self) -> None:
        pass

    def prepare(self, conn: Conn, ts_ns: npt.NDArray[np.int64]) -> None:
        pass  # TimescaleDB makes its chunks

    def target(self, ts_ns: npt.NDArray[np.int64]) -> str:
        return "samples"

    def roll_up(self, every_ns: int, tag_ids: list[TagId], span: TimeRange) -> None:
        """Refresh the tier's continuous aggregate (made on first use) over ``span``, for
        every tag: TimescaleDB materialises whole buckets of the hypertable."""
        store = self.store
        view = sql.Identifier(aggregate_view(every_ns))
        with store.lock, store.conn() as conn:
            conn.autocommit = True  # CREATE … continuous and CALL refresh refuse a transaction
            try:
                conn.execute(
                    sql.SQL(
                        "CREATE MATERIALIZED VIEW IF NOT EXISTS {s}.{view} WITH "
                        "(timescaledb.continuous, timescaledb.materialized_only = true) AS "
                        "SELECT tag_id, time_bucket({e}, ts_ns) AS bucket_ns, "
                        "count(*)::float8 AS count, sum(value) AS sum, min(value) AS min, "
                        "max(value) AS max, first(value, ts_ns) AS first, "
                        "last(value, ts_ns) AS last FROM {s}.samples WHERE quality < {bad} "
                        "GROUP BY 1, 2 WITH NO DATA"
                    ).format(
                        s=store.schema,
                        view=view,
                        e=sql.Literal(every_ns),
                        bad=sql.Literal(int(Quality.BAD)),
                    )
                )
                conn.execute(
                    sql.SQL("CALL refresh_continuous_aggregate({}, {}, {})").format(
                        sql.Literal(f"{store.s.schema_name}.{aggregate_view(every_ns)}"),
                        sql.Literal(span.start_ns),
                        sql.Literal(span.end_ns),
                    )
                )
            finally:
                conn.autocommit = False

    def tier(self, every_ns: int) -> Tier | None:
        store = self.store
        with store.conn() as conn:
            exists = conn.execute(
                "SELECT to_regclass(%s)", (f"{store.s.schema_name}.{aggregate_view(every_ns)}",)
            ).fetchone()
            conn.rollback()
        if not exists or exists[0] is None:
            return None
        view = sql.Identifier(aggregate_view(every_ns))
        return sql.SQL("{}.{}").format(store.schema, view), sql.SQL("")

    def compact(self) -> int:
        """TimescaleDB's compression policy does it: chunks older than
        ``compress_after_days`` are compressed, segmented by tag and ordered by time."""
        return 0

    def tier_rows(self, conn: Conn, every_ns: int, relation: sql.Composable) -> sql.Composable:
        """A continuous aggregate's rows live in its materialisation hypertable, which takes
        a DELETE (the view does not)."""
        row = conn.execute(
            "SELECT materialization_hypertable_schema, materialization_hypertable_name "
            "FROM timescaledb_information.continuous_aggregates "
            "WHERE view_schema = %s AND view_name = %s",
            (self.store.s.schema_name, aggregate_view(every_ns)),
        ).fetchone()
        assert row is not None  # tier() found the view
        return sql.SQL("{}.{}").format(sql.Identifier(row[0]), sql.Identifier(row[1]))

    @staticmethod
    def wanted(store: PostgresStore, conn: Conn, current: str | None) -> bool:
        """Whether to convert now: the setting allows it, the layout is still partitioned and
        the server offers the extension (with ``on``, an error if it does not)."""
        if store.s.timescaledb == "off" or current == Timescale.name:
            return False
        offered = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if offered is None and store.s.timescaledb == "on":
            raise ConfigError(
                "[store] timescaledb = 'on' but this PostgreSQL server does not offer the "
                "timescaledb extension: install it (and add it to shared_preload_libraries), "
                "or set timescaledb = 'auto' or 'off'"
            )
        return offered is not None

    @staticmethod
    def convert(store: PostgresStore, conn: Conn) -> bool:
        """Move the samples of a partitioned database into a hypertable (in the caller's
        transaction); False, and the layout left as it is, where the extension cannot load."""
        s = store.schema
        try:
            with conn.transaction():  # a savepoint: without the preloaded library, stay native
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except psycopg.Error as e:
            if store.s.timescaledb == "on":
                raise ConfigError(f"[store] timescaledb = 'on': {str(e).strip()}") from None
            log.warning("postgres: timescaledb offered but not usable (%s); native partitions",
                        str(e).strip())  # fmt: skip
            return False
        moved = conn.execute(sql.SQL("SELECT count(*) FROM {}.samples").format(s)).fetchone()
        log.info(
            "postgres: moving %d samples into a TimescaleDB hypertable", moved[0] if moved else 0
        )
        for statement in _TO_HYPERTABLE:
            conn.execute(
                sql.SQL(statement).format(
                    s=s,
                    name=sql.Literal(f"{store.s.schema_name}.samples"),
                    now_fn=sql.Literal(f"{store.s.schema_name}.now_ns"),
                    width=sql.Literal(store.s.partition_days * NS_PER_DAY),
                    after=sql.Literal(round(store.s.compress_after_days * NS_PER_DAY)),
                )
            )
        return True


_SORT_PARTITION = (
    "LOCK TABLE {s}.{part} IN SHARE ROW EXCLUSIVE MODE",  # writers wait, readers go on
    "CREATE TABLE {s}.{tmp} (LIKE {s}.{part} INCLUDING DEFAULTS)",
    "INSERT INTO {s}.{tmp} SELECT * FROM {s}.{part} ORDER BY tag_id, ts_ns",
    "ALTER TABLE {s}.{tmp} ADD CONSTRAINT {check} CHECK (ts_ns >= {a} AND ts_ns < {b})",
    "ALTER TABLE {s}.samples DETACH PARTITION {s}.{part}",
    "DROP TABLE {s}.{part}",
    "ALTER TABLE {s}.{tmp} RENAME TO {part}",
    # the CHECK spares ATTACH its scan; the parent's BRIN is built on the sorted rows
    "ALTER TABLE {s}.samples ATTACH PARTITION {s}.{part} FOR VALUES FROM ({a}) TO ({b})",
    "ALTER TABLE {s}.{part} DROP CONSTRAINT {check}",
    "ANALYZE {s}.{part}",
)

_TO_HYPERTABLE = (
    "ALTER TABLE {s}.samples RENAME TO samples_native",
    "CREATE TABLE {s}.samples (tag_id integer NOT NULL, ts_ns bigint NOT NULL, "
    "value float8 NOT NULL, quality smallint NOT NULL)",
    "SELECT create_hypertable({name}, 'ts_ns', chunk_time_interval => {width}, "
    "create_default_indexes => false)",
    "INSERT INTO {s}.samples SELECT * FROM {s}.samples_native",
    "DROP TABLE {s}.samples_native",
    "CREATE INDEX samples_brin ON {s}.samples USING brin (tag_id, ts_ns) "
    "WITH (pages_per_range = 4)",
    "CREATE OR REPLACE FUNCTION {s}.now_ns() RETURNS bigint LANGUAGE sql STABLE AS "
    "$$ SELECT (extract(epoch FROM now()) * 1e9)::bigint $$",
    "SELECT set_integer_now_func({name}, {now_fn})",
    "ALTER TABLE {s}.samples SET (timescaledb.compress, "
    "timescaledb.compress_segmentby = 'tag_id', timescaledb.compress_orderby = 'ts_ns')",
    "SELECT add_compression_policy({name}, compress_after => {after})",
    "INSERT INTO {s}.genba_meta VALUES ('layout', 'timescaledb') "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
)

LAYOUTS: dict[str, type[Partitioned] | type[Timescale]] = {
    Partitioned.name: Partitioned,
    Timescale.name: Timescale,
}


def partition_table(number: int) -> str:
    """The table of partition ``number`` (time // partition width): samples_p12, samples_pm1."""
    return f"samples_p{'m' if number < 0 else ''}{abs(number)}"


def aggregate_view(every_ns: int) -> str:
    """The continuous aggregate of the ``every_ns`` tier (TimescaleDB layout)."""
    return f"rollup_{every_ns}"
