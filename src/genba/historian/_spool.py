"""Store-and-forward: a durable, bounded, first-in-first-out queue of batches on disk.

When the store cannot take a batch, the historian writer puts it here (one Arrow IPC file per
batch, written to a temporary name, synced, then renamed, so a crash leaves whole files only)
and keeps draining the bus; when the store is back the files are replayed in order. Files left
by a stopped or crashed node are replayed at the next start.

>>> import tempfile
>>> from genba.types import SampleBatch
>>> spool = Spool(Path(tempfile.mkdtemp()), max_bytes=10**6)
>>> spool.put(SampleBatch.from_columns(tag_ids=[1], ts_ns=[5], values=[2.5]))
>>> path, batch = spool.peek()
>>> batch.values.tolist(), spool.files
([2.5], 1)
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as paipc

from genba.types import SampleBatch

SUFFIX = ".arrow"


class Spool:
    """Batches on disk under ``folder``, oldest first, at most ``max_bytes`` together."""

    def __init__(self, folder: Path, *, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)
        for tmp in folder.glob("*.tmp"):
            tmp.unlink()  # a write a crash interrupted: never acknowledged
        self._paths = sorted(folder.glob(f"*{SUFFIX}"))
        self._seq = int(self._paths[-1].stem) + 1 if self._paths else 0
        self.bytes = sum(p.stat().st_size for p in self._paths)

    @property
    def files(self) -> int:
        return len(self._paths)

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def put(self, batch: SampleBatch) -> None:
        """Write ``batch`` durably at the end of the queue."""
        table = batch.to_arrow()
        path = self.folder / f"{self._seq:012d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        self.folder.mkdir(exist_ok=True)  # not its parents: a vanished data dir stays gone
        try:
            with pa.OSFile(str(tmp), "wb") as sink, paipc.new_file(sink, table.schema) as w:
                w.write_table(table)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
        except BaseException:  # a full or read-only disk: leave no half-written file
            tmp.unlink(missing_ok=True)
            raise
        self._seq += 1
        self._paths.append(path)
        self.bytes += path.stat().st_size

    def peek(self) -> tuple[Path, SampleBatch] | None:
        """The oldest batch, or None."""
        if not self._paths:
            return None
        return self._paths[0], self._read(self._paths[0])

    def peek_many(self, max_samples: int) -> list[tuple[Path, SampleBatch]]:
        """The oldest batches, as many as fit in ``max_samples`` (at least one, if any)."""
        out: list[tuple[Path, SampleBatch]] = []
        total = 0
        for path in list(self._paths):
            batch = self._read(path)
            if out and total + len(batch) > max_samples:
                break
            out.append((path, batch))
            total += len(batch)
        return out

    def _read(self, path: Path) -> SampleBatch:
        with pa.memory_map(str(path)) as source:
            t = paipc.open_file(source).read_all()
        return SampleBatch.from_arrow(t)

    def pop(self, path: Path) -> None:
        """Forget the oldest batch, once the store holds it."""
        if not self._paths or self._paths[0] != path:
            raise ValueError(f"{path} is not the oldest spooled batch")
        self.bytes -= path.stat().st_size
        path.unlink()
        self._paths.pop(0)
