"""The historian: where samples are kept and how they are read back.

Every backend implements :class:`Store`; DuckDB (one file) is the default.
"""

from genba.store._base import (
    AGGREGATES,
    ROLLUP,
    Buckets,
    Record,
    Rollups,
    Runs,
    Store,
    StoreSettings,
    TimeRange,
    check_aggs,
    open_store,
)
from genba.store._derived import last_before

__all__ = [
    "AGGREGATES",
    "ROLLUP",
    "Buckets",
    "Record",
    "Rollups",
    "Runs",
    "Store",
    "StoreSettings",
    "TimeRange",
    "check_aggs",
    "last_before",
    "open_store",
]
