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
    return batch_of(copy_rows(data, ROW))


class CopyRows:
    """Rows of a binary ``COPY … TO STDOUT`` read chunk by chunk (chunks end anywhere; rows
    are fixed-width), handed out as numpy records ``rows`` at a time.

    >>> from genba.types import SampleBatch
    >>> data = copy_payload(SampleBatch.from_columns(tag_ids=[1, 2, 3], ts_ns=[1, 2, 3],
    ...                                               values=[0.5, 1.5, 2.5]))
    >>> reader = CopyRows(ROW, rows=2)
    >>> out = [r["val"].tolist() for chunk in (data[:7], data[7:50], data[50:])
    ...        for r in reader.feed(chunk)]
    >>> out + [r["val"].tolist() for r in reader.finish()]
    [[0.5, 1.5], [2.5]]
    """

    def __init__(self, dtype: np.dtype[Any], *, rows: int) -> None:
        self._dtype = dtype
        self._want = rows * dtype.itemsize
        self._buf = bytearray()
        self._header = True

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[npt.NDArray[Any]]:
        """Take ``chunk``; the full blocks of ``rows`` rows it completes."""
        self._buf += chunk
        if self._header:
            if len(self._buf) < len(HEADER):
                return []
            del self._buf[: len(HEADER)]
            self._header = False
        out = []
        while len(self._buf) >= self._want:
            out.append(self._take(self._want))
        return out

    def finish(self) -> list[npt.NDArray[Any]]:
        """The rows left once the stream has ended (its trailer dropped)."""
        if self._buf.endswith(TRAILER):
            del self._buf[-len(TRAILER) :]
        whole = len(self._buf) - len(self._buf) % self._dtype.itemsize
        if len(self._buf) != whole:
            raise ValueError(f"a COPY stream ended inside a row ({len(self._buf)} bytes left)")
        return [self._take(whole)] if whole else []

    def _take(self, n: int) -> npt.NDArray[Any]:
        rows = np.frombuffer(self._buf[:n], dtype=self._dtype)  # the slice is a copy of its own
        del self._buf[:n]
        return rows


def batch_of(rows: npt.NDArray[Any]) -> SampleBatch:
    """Binary COPY rows of (tag_id, ts_ns, value, quality) as a batch."""
    return SampleBatch.from_columns(
        tag_ids=rows["tag"].astype(np.int32),
        ts_ns=rows["ts"].astype(np.int64),
        values=rows["val"].astype(np.float64),
        quality=rows["q"].astype(np.uint8),
    )
