"""Reason codes of the simulator's ``reason`` tag: :class:`genba.states.Reason`, and which of
them strike suddenly (no drift before them)."""

from __future__ import annotations

from genba.states import Reason

SUDDEN = (Reason.JAM, Reason.ELECTRICAL, Reason.MOTOR_TRIP)

__all__ = ["SUDDEN", "Reason"]
