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

    def trim(self, before: float) -> None:
        """Forget the rows older than ``before``."""
        i = self.span(-1.0, before).stop
        if i:
            del self.t[:i]
            del self.m[:i]
            for col in self.values:
                del col[:i]

    def last_before(self, before: float) -> dict[int, tuple[float, ...]]:
        """The values of the last row before ``before`` of each machine that has one."""
        rows = self.span(-1.0, before)
        _, m, vals = self.columns(rows)
        out: dict[int, tuple[float, ...]] = {}
        casts = [float if code == "d" else int for code in self.value_types]
        for i in range(len(m)):  # once an hour, a few thousand rows at most: plain Python
            out[int(m[i])] = tuple(c(v[i]) for c, v in zip(casts, vals, strict=True))
        return out

    def prepend(self, t: float, rows: dict[int, tuple[float, ...]]) -> None:
        """Put rows at time ``t`` (older than every row held) before the others."""
        keep = Log(self.value_types, self.t, self.m, [])
        keep.values = self.values
        fresh = Log(self.value_types)
        for m, vals in sorted(rows.items()):
            fresh.add(t, m, *vals)
        self.t = fresh.t + keep.t
        self.m = fresh.m + keep.m
        self.values = [a + b for a, b in zip(fresh.values, keep.values, strict=True)]

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
    """Every log of the model. ``trim`` keeps memory bounded in long runs: state rows are
    cut at the trim time with each machine's state carried over, so timelines stay whole."""

    state: Log = field(default_factory=lambda: Log(("b", "b")))  # state, reason
    part: Log = field(default_factory=lambda: Log(("b", "b")))  # flags, product
    cycle: Log = field(default_factory=lambda: Log(("d",)))  # cycle seconds of a started cycle
    setpoint: Log = field(default_factory=lambda: Log(("d", "d")))  # temperature_sp, speed_sp
    product: Log = field(default_factory=lambda: Log(("b",)))  # product code now made
    wear: Log = field(default_factory=lambda: Log(("d",)))  # life (running s) of a new part

    def trim(self, before: float) -> None:
        carried = self.state.last_before(before)
        for log in (self.state, self.part, self.cycle, self.setpoint, self.product, self.wear):
            log.trim(before)
        self.state.prepend(before, carried)
