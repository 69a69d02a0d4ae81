"""``[store]``: which historian backend the node keeps its data in, and how it batches writes.

The backends themselves (and their own option models) live in :mod:`genba.historian`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StoreSettings(BaseModel):
    """``[store]``: the backend ``kind`` and how the node batches writes to it.

    Backend options (``path`` for DuckDB, ``dsn`` for PostgreSQL) sit in the same table and
    are validated by the backend's own ``Settings`` model.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field("duckdb", description="Historian backend: one of the installed store kinds.")
    flush_interval_ms: int = Field(
        250, gt=0, le=60_000, description="Longest a sample waits in memory before it is written."
    )
    flush_max_samples: int = Field(
        200_000, gt=0, description="Write as soon as this many samples are waiting."
    )
    spool_max_mb: int = Field(
        1024,
        ge=0,
        description="Store-and-forward: disk the spool may use while the store is down (0: off).",
    )
    buffer_max_samples: int = Field(
        1_000_000,
        gt=0,
        le=1_000_000_000,
        description="Samples held in memory while neither the store nor the spool takes them "
        "(a full or read-only disk); past it connectors wait. Nothing in memory is acknowledged.",
    )
    disk_min_free_mb: int = Field(
        1024,
        ge=0,
        le=100_000_000,
        description="Health warns (status degraded) when the data dir's disk has less free.",
    )
    queue_max_samples: int = Field(
        2_000_000,
        gt=0,
        description="Bound of the historian's bus queue; connectors wait when it is full.",
    )

    def backend_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
