"""PostgreSQL's binary ``COPY`` format, built from and parsed into numpy columns (no Python
object per sample)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from genba.types import SampleBatch

# The binary COPY row of (tag_id int4, ts_ns int8, value float8, quality int2): a field count,
# then each field's byte length and its big-endian value (PostgreSQL's COPY BINARY format).
ROW = np.dtype(
    [("n", ">i2"), ("l_tag", ">i4"), ("tag", ">i4"), ("l_ts", ">i4"), ("ts", ">i8"),
     ("l_val", ">i4"), ("val", ">f8"), ("l_q", ">i4"), ("q", ">i2")]
)  # fmt: skip
RUN_ROW = np.dtype(
    [("n", ">i2"), ("l_s", ">i4"), ("s", ">i8"), ("l_l", ">i4"), ("l", ">i8"),
     ("l_val", ">i4"), ("val", ">f8")]
)  # fmt: skip
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"


def copy_payload(batch: SampleBatch) -> bytes:
    """``batch`` in PostgreSQL's binary COPY format, built column by column."""
    rows = np.empty(len(batch), dtype=ROW)
    rows["n"], rows["l_tag"], rows["l_ts"], rows["l_val"], rows["l_q"] = 4, 4, 8, 8, 2
    rows["tag"] = batch.tag_ids
    rows["ts"] = batch.ts_ns
    rows["val"] = batch.values
    rows["q"] = batch.quality
    return HEADER + rows.tobytes() + TRAILER


def copy_rows(data: bytes, dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """The fixed-width rows of a binary ``COPY … TO STDOUT`` (header and trailer removed)."""
    if not data:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(memoryview(data)[len(HEADER) : len(data) - len(TRAILER)], dtype=dtype)


def parse_copy(data: bytes) -> SampleBatch:
    """Rows of (tag_id, ts_ns, value, quality) from a binary ``COPY … TO STDOUT``."""
    rows = copy_rows(data, ROW)
    return SampleBatch.from_columns(
        tag_ids=rows["tag"].astype(np.int32),
        ts_ns=rows["ts"].astype(np.int64),
        values=rows["val"].astype(np.float64),
        quality=rows["q"].astype(np.uint8),
    )
