"""Machine states: one code list for the simulator, the state tracker, KPIs and the dashboard.

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
