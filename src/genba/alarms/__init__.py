"""Alarms: rules per tag (high / low limits with deadband, rate of change, stuck value, no
data), ISA-18.2 alarm states, operator acknowledge and shelve, a history. docs/alarms.md."""

from genba.alarms._conditions import Limit, NoData, Rate, Stuck
from genba.alarms._engine import PRIORITIES, AlarmEngine, AlarmRule, AlarmSettings
from genba.alarms._state import STATES, AlarmState, AlarmStateError

__all__ = [
    "PRIORITIES",
    "STATES",
    "AlarmEngine",
    "AlarmRule",
    "AlarmSettings",
    "AlarmState",
    "AlarmStateError",
    "Limit",
    "NoData",
    "Rate",
    "Stuck",
]
