"""What :class:`~genba.kpi.Kpi` answers with: typed results, raw numbers, integer UTC ns.

Ratios are fractions (0.85, not 85 %), times in the unit their key names (``_min``, ``_h``,
``_s``), money in ``[costs] currency``; an undefined figure is ``None``. Formatting — ISO
times, plant local time, milliseconds — is made only at the edge (``genba.api._views``, used
by the API, the CLI and the report), so a component (a model trainer, a scheduler) uses a KPI
without parsing JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.historian import TimeRange
from genba.states import MachineState
from genba.types import NS_PER_S


@dataclass(frozen=True, slots=True)
class KpiRow:
    """The figures of one entity (a machine, a line, or the asset above them) in one period."""

    entity: str
    level: str
    """``machine``, ``line``, ``area``, ``site`` or ``all``."""
    period: str
    """The period's label: ``all``, a shift (``2026-01-05 early``), a local day or hour."""
    start_ns: int
    end_ns: int
    figures: dict[str, Any]
    """The KPIs of the answer's kind (docs/kpi.md): e.g. ``oee``, ``losses_min``, ``counts``."""


@dataclass(frozen=True, slots=True)
class NotCounted:
    """A machine whose figures could not be counted (all its time unknown), and why."""

    machine: str
    reason: str


@dataclass(frozen=True, slots=True)
class KpiWarning:
    """What makes a figure suspect, with the fix (``kind``: ``performance_above_100``)."""

    machine: str
    kind: str
    performance: float
    message: str


@dataclass(frozen=True, slots=True)
class KpiAnswer:
    """An answer of :meth:`Kpi.oee`, :meth:`~Kpi.losses`, :meth:`~Kpi.reliability` or
    :meth:`~Kpi.cost`: one row per entity and period, and what could not be counted."""

    kind: str
    asset: str
    span: TimeRange
    by: str | None
    rows: list[KpiRow]
    not_counted: list[NotCounted]
    warnings: list[KpiWarning]
    extra: dict[str, Any] = field(default_factory=dict)
    """What the kind adds beside its rows: ``pareto`` (losses), ``failures_by_reason``
    (reliability), ``currency`` (cost)."""

    def row(self, entity: str, period: str | None = None) -> KpiRow:
        """The row of ``entity`` (in ``period``, or the first period)."""
        for r in self.rows:
            if r.entity == entity and (period is None or r.period == period):
                return r
        raise KeyError(f"no row for {entity!r} in {period or 'any period'!r}")


@dataclass(frozen=True, slots=True)
class MachineRuns:
    """One machine's state runs, columnar: run ``i`` is ``state[i]`` from ``start_ns[i]``."""

    machine: str
    start_ns: npt.NDArray[np.int64]
    end_ns: npt.NDArray[np.int64]
    state: npt.NDArray[np.int8]
    """:class:`~genba.states.MachineState` codes; 0 is unknown."""
    reason_code: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Timeline:
    """The state runs of every machine under ``asset`` (the line view's Gantt chart)."""

    asset: str
    span: TimeRange
    machines: list[MachineRuns]
    not_counted: list[NotCounted]


@dataclass(frozen=True, slots=True)
class Stop:
    """A stop of a machine with its reason, from the machine or an operator."""

    id: str
    """``site.area.line.machine@<start ns>``: what ``POST /api/downtime/{id}/reason`` takes."""
    machine: str
    start_ns: int
    end_ns: int
    state: MachineState
    reason_code: int
    reason: str
    category: str
    entered_by_operator: bool

    @property
    def minutes(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S / 60
