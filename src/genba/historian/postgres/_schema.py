"""The PostgreSQL backend's options and its numbered schema migrations."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "tags, partitioned samples, last values",
        """
        CREATE TABLE {s}.tags (
            id integer PRIMARY KEY, path text NOT NULL UNIQUE,
            unit text NOT NULL, description text NOT NULL, low float8, high float8
        );
        CREATE TABLE {s}.samples (
            tag_id integer NOT NULL, ts_ns bigint NOT NULL, value float8 NOT NULL,
            quality smallint NOT NULL
        ) PARTITION BY RANGE (ts_ns);
        CREATE INDEX samples_ts_brin ON {s}.samples USING brin (ts_ns);
        CREATE INDEX samples_tag_ts ON {s}.samples (tag_id, ts_ns);
        CREATE TABLE {s}.last_values (
            tag_id integer PRIMARY KEY, ts_ns bigint NOT NULL, value float8 NOT NULL,
            quality smallint NOT NULL
        );
        """,
    ),
    (
        2,
        "per-tag reads through a fine BRIN on tag_id instead of a B-tree (COPY 2x faster)",
        """
        DROP INDEX {s}.samples_tag_ts;
        CREATE INDEX samples_tag_brin ON {s}.samples USING brin (tag_id)
            WITH (pages_per_range = 4);
        """,
    ),
    (
        3,
        "downsampling tiers",
        """
        CREATE TABLE {s}.rollups (
            every_ns bigint NOT NULL, tag_id integer NOT NULL, bucket_ns bigint NOT NULL,
            count float8, sum float8, min float8, max float8, first float8, last float8,
            PRIMARY KEY (every_ns, tag_id, bucket_ns)
        );
        """,
    ),
    (
        4,
        "one BRIN on (tag_id, ts_ns) instead of one per column (COPY ~25% faster, same reads)",
        """
        DROP INDEX {s}.samples_ts_brin;
        DROP INDEX {s}.samples_tag_brin;
        CREATE INDEX samples_brin ON {s}.samples USING brin (tag_id, ts_ns)
            WITH (pages_per_range = 4);
        """,
    ),
    (
        5,
        "the record log",
        """
        CREATE TABLE {s}.records (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL,
            ts_ns bigint NOT NULL, key text NOT NULL, body jsonb NOT NULL
        );
        CREATE INDEX records_kind_key ON {s}.records (kind, key, seq);
        CREATE INDEX records_kind_ts ON {s}.records (kind, ts_ns);
        """,
    ),
]


class PostgresSettings(BaseModel):
    """Options of ``[store]`` when ``kind = "postgres"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn: SecretStr = Field(
        description="libpq connection string or URI, e.g. "
        "'postgresql://genba@db.plant.local/historian' (masked in logs)."
    )
    schema_name: str = Field(
        "genba", alias="schema", description="Schema holding genba's tables (created if missing)."
    )
    partition_days: int = Field(7, ge=1, le=366, description="Time span of one partition.")
    pool_max: int = Field(8, ge=1, le=100, description="Most connections the node opens.")
    prepared_statements: bool = Field(
        True,
        description="Let psycopg prepare queries run often. Turn off behind a pooler whose "
        "clients share server sessions (PgBouncer in transaction mode before 1.21).",
    )
    timescaledb: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Keep samples in a TimescaleDB hypertable with compression and continuous "
        "aggregates: 'auto' when the server offers the extension, 'on' (an error if it does "
        "not), 'off' (native partitions). A database that has samples is converted once.",
    )
    compress_after_days: float = Field(
        7.0, gt=0, description="TimescaleDB: chunks whose samples are all older are compressed."
    )

    @field_validator("schema_name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", v):
            raise ValueError(f"schema {v!r}: use lower-case letters, digits and _ (e.g. 'genba')")
        return v
