"""Machine states and stop reasons: one code list for the simulator, the state tracker, KPIs
and the dashboard.

The ``state`` tag of a machine carries these codes. How each counts in OEE is in
docs/simulator.md ("Ground truth") and docs/kpi.md.

>>> MachineState(7).name
'DOWN'
"""

from __future__ import annotations

import enum


class MachineState(enum.IntEnum):
    RUNNING = 1
    """Making parts (at any speed)."""
    IDLE = 2
    """Not scheduled: outside the shift calendar, or no order to make."""
    STARVED = 3
    """Ready, but no part from upstream."""
    BLOCKED = 4
    """Holding a finished part, no room downstream."""
    PLANNED_STOP = 5
    """A planned stop inside a shift: break, meeting, shift handover."""
    SETUP = 6
    """Changeover between products, and adjustments."""
    DOWN = 7
    """Unplanned stop: a breakdown, with a reason code."""
    SMALL_STOP = 8
    """A short stoppage (minutes at most) that the operator clears."""


STATE_NAMES = tuple(s.name.lower() for s in MachineState)
"""The states as written in config and shown in the API: ``running``, ``idle``, … ."""


class Reason(enum.IntEnum):
    """Why a machine is in its state: the codes of a machine's ``reason`` tag as the simulator
    writes them, and the reason tree KPIs use when ``genba.toml`` has no ``[[reason]]``."""

    NONE = 0
    NO_SHIFT = 1  # IDLE: outside the shift calendar
    NO_ORDER = 2  # IDLE: nothing left to make
    BREAK = 10  # PLANNED_STOP: a break in the shift calendar
    CHANGEOVER = 20  # SETUP: product change
    WEAR_OUT = 30  # DOWN: a worn component failed (bearing), preceded by drift
    JAM = 31  # DOWN: sudden mechanical jam
    ELECTRICAL = 32  # DOWN: sudden electrical fault
    MOTOR_TRIP = 33  # DOWN: motor protection tripped
    MINOR_JAM = 40  # SMALL_STOP: a short stoppage cleared by the operator
    UPSTREAM = 50  # STARVED
    DOWNSTREAM = 51  # BLOCKED


REASON_CATEGORIES: dict[Reason, str] = {
    Reason.NO_SHIFT: "schedule",
    Reason.NO_ORDER: "schedule",
    Reason.BREAK: "schedule",
    Reason.CHANGEOVER: "setup",
    Reason.WEAR_OUT: "breakdown",
    Reason.JAM: "breakdown",
    Reason.ELECTRICAL: "breakdown",
    Reason.MOTOR_TRIP: "breakdown",
    Reason.MINOR_JAM: "small_stop",
    Reason.UPSTREAM: "flow",
    Reason.DOWNSTREAM: "flow",
}
"""The category of each reason (every code but NONE) in the default reason tree."""
