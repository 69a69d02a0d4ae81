"""Nothing stored twice: samples the store already holds exactly are dropped before a write.

A sample older than its tag's newest stored one is checked against the store, and dropped if
the very same sample (tag, time, value, quality) is already there: redelivery after a crash (an
MQTT broker resends what genba had stored but not yet acknowledged), a replayed spool, a
forwarder's retry, or the same file imported twice. Live data, always newer, costs nothing.

>>> import tempfile
>>> from pathlib import Path
>>> from genba.historian import StoreSettings, open_store
>>> d = Path(tempfile.mkdtemp())
>>> store = open_store(StoreSettings(), data_dir=d)
>>> b = SampleBatch.from_columns(tag_ids=[1, 1], ts_ns=[10, 20], values=[1.0, 2.0])
>>> seen = Redeliveries(store)
>>> store.append(seen.filter(b)); seen.note(b)
>>> len(seen.filter(b)), seen.dropped
(0, 2)
>>> store.close()
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from genba.historian._store import Store, TimeRange
from genba.types import SampleBatch

_NEVER = np.iinfo(np.int64).min


class Redeliveries:
    """Drops, from batches about to be written to ``store``, the samples it holds already."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._newest: npt.NDArray[np.int64] | None = None  # per tag id: newest stored ts_ns
        self.dropped = 0
        """Samples dropped so far because the store held them."""

    def filter(self, batch: SampleBatch) -> SampleBatch:
        """``batch`` less the samples the store already holds exactly."""
        if not len(batch):
            return batch
        newest = self._learn()
        ids = batch.tag_ids
        known = ids < len(newest)
        old = np.zeros(len(batch), dtype=bool)
        old[known] = batch.ts_ns[known] <= newest[ids[known]]
        if not old.any():
            return batch
        span = TimeRange(int(batch.ts_ns[old].min()), int(batch.ts_ns[old].max()) + 1)
        stored = self._store.raw(np.unique(ids[old]).tolist(), span)
        if not len(stored):
            return batch
        dup = np.zeros(len(batch), dtype=bool)
        dup[old] = np.isin(_keys(batch)[old], _keys(stored))
        if not dup.any():
            return batch
        self.dropped += int(dup.sum())
        keep = ~dup
        return SampleBatch(ids[keep], batch.ts_ns[keep], batch.values[keep], batch.quality[keep])

    def _learn(self) -> npt.NDArray[np.int64]:
        """Each tag's newest stored time, read once from the store's last values."""
        if self._newest is None:
            last = self._store.last()
            size = max(int(last.tag_ids.max()) + 1 if len(last) else 0, 1024)
            self._newest = np.full(size, _NEVER, dtype=np.int64)
            self._newest[last.tag_ids] = last.ts_ns
        return self._newest

    def forget(self) -> None:
        """After a failed write (which may have committed): read the newest times again."""
        self._newest = None

    def note(self, batch: SampleBatch) -> None:
        """``batch`` was written: its samples are the newest of their tags now."""
        if not len(batch):
            return
        newest = self._learn()
        top = int(batch.tag_ids.max())
        if top >= len(newest):
            grown = np.full(top * 2 + 1, _NEVER, dtype=np.int64)
            grown[: len(newest)] = newest
            newest = self._newest = grown
        np.maximum.at(newest, batch.tag_ids, batch.ts_ns)


def _keys(batch: SampleBatch) -> npt.NDArray[np.void]:
    """One comparable 24-byte key per sample: tag, time, value bits, quality."""
    rows = np.empty(len(batch), dtype=[("t", "<i4"), ("q", "<i4"), ("ts", "<i8"), ("v", "<f8")])
    rows["t"], rows["q"], rows["ts"], rows["v"] = (
        batch.tag_ids,
        batch.quality,
        batch.ts_ns,
        batch.values,
    )
    return rows.view(np.dtype((np.void, 24)))
