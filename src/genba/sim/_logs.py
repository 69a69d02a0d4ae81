"""What the simulation did, as compact chronological columns (``array.array``).

SimPy runs events in time order, so every log is sorted by time as it is appended; a time
range is two binary searches. About 10 bytes a record: a week of a large plant fits.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

PART_GOOD = 1
PART_STARTUP = 2


@dataclass
class Log:
    """One event kind: time (s since the scenario start), machine index, and value columns."""

    value_types: tuple[str, ...]
    t: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    m: array = field(default_factory=lambda: array("i"))  # type: ignore[type-arg]
    values: list[array] = field(default_factory=list)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self.values = [array(code) for code in self.value_types]

    def add(self, t: float, m: int, *values: float) -> None:
        self.t.append(t)
        self.m.append(m)
        for col, v in zip(self.values, values, strict=True):
            col.append(v)

    # Unrolled forms for the per-part hot path (a third faster than ``add``).
    def add1(self, t: float, m: int, v: float) -> None:
        self.t.append(t)
        self.m.append(m)
        self.values[0].append(v)

    def add2(self, t: float, m: int, v: float, w: float) -> None:
        self.t.append(t)
        self.m.append(m)
        self.values[0].append(v)
        self.values[1].append(w)

    def __len__(self) -> int:
        return len(self.t)

    def span(self, a: float, b: float) -> slice:
        """Rows with ``a <= t < b``."""
        t = np.frombuffer(self.t, dtype=np.float64)
        rows = slice(int(np.searchsorted(t, a, "left")), int(np.searchsorted(t, b, "left")))
        del t  # release the buffer: the array may grow again
        return rows

    def columns(
        self, rows: slice
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], list[npt.NDArray[np.float64]]]:
        """Copies of the rows (a view would stop the arrays from growing)."""
        a, b = rows.start, rows.stop
        t = np.frombuffer(self.t[a:b], dtype=np.float64)
        m = np.frombuffer(self.m[a:b], dtype=np.int32)
        vals = [np.asarray(col[a:b], dtype=np.float64) for col in self.values]
        return t, m, vals


@dataclass
class Logs:
    state: Log = field(default_factory=lambda: Log(("b", "b")))  # state, reason
    part: Log = field(default_factory=lambda: Log(("b", "b")))  # flags, product
    cycle: Log = field(default_factory=lambda: Log(("d",)))  # cycle seconds of a started cycle
    setpoint: Log = field(default_factory=lambda: Log(("d", "d")))  # temperature_sp, speed_sp
    product: Log = field(default_factory=lambda: Log(("b",)))  # product code now made
    wear: Log = field(default_factory=lambda: Log(("d",)))  # life (running s) of a new part
