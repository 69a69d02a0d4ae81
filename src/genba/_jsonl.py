"""An append-only JSON-lines file that a full or read-only disk never turns into a crash.

The folder must exist (the node's data dir, made at start): one that vanished is not made
again here, so a removed or unmounted data dir is noticed, not silently replaced.

Used for the dead-letter record and the alarm history: each file is rotated at ``max_bytes``
(one older file kept, as ``<name>.1``), and a write that fails is counted and logged, once per
run of failures, instead of raised: what the file records must never stop what it records.

>>> import tempfile
>>> from pathlib import Path
>>> f = JsonLines(Path(tempfile.mkdtemp()) / "x.jsonl", max_bytes=100)
>>> [f.append({"n": i}) for i in range(12)][-1], f.rotations, f.write_errors
(True, 1, 0)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("genba")


class JsonLines:
    """``path``, one JSON object a line, rotated at ``max_bytes``; see the module docstring."""

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.rotations = 0
        self.write_errors = 0
        self._failing = False

    def append(self, record: dict[str, Any]) -> bool:
        """Add ``record``; False (counted in ``write_errors``) when the disk refused it."""
        try:
            if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
                self.rotations += 1
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            self.write_errors += 1
            if not self._failing:
                log.error("cannot write %s (%s); counting what is not written", self.path, e)
            self._failing = True
            return False
        if self._failing:
            log.info("%s is written again (%d records were not)", self.path, self.write_errors)
        self._failing = False
        return True
