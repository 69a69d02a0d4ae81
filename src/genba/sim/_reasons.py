"""Reason codes of the simulator's ``reason`` tag: why a machine is in its state."""

from __future__ import annotations

import enum


class Reason(enum.IntEnum):
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


SUDDEN = (Reason.JAM, Reason.ELECTRICAL, Reason.MOTOR_TRIP)
