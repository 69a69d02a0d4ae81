"""Production KPIs: machine states, OEE with the six big losses, reliability and money.

Figures come from the store's samples through each machine's ``[machine.signals]`` and the
line's calendar; definitions and formulas are in docs/kpi.md.
"""

from genba.kpi._answers import (
    KpiAnswer,
    KpiRow,
    KpiWarning,
    MachineRuns,
    NotCounted,
    Stop,
    Timeline,
)
from genba.kpi._load import OPERATOR_REASON, Loaded, SignalReader, ideal_cycles, load
from genba.kpi._metrics import oee, ratio, reliability
from genba.kpi._oee import CLASSES, Calendar, Figures, Periods, compute
from genba.kpi._service import BY, REPORT_PERIODS, Kpi, downtime_id, periods_of, report_span
from genba.kpi._timeline import Counts, Energy, States, counter_increments, track_states

__all__ = [
    "BY",
    "CLASSES",
    "OPERATOR_REASON",
    "REPORT_PERIODS",
    "Calendar",
    "Counts",
    "Energy",
    "Figures",
    "Kpi",
    "KpiAnswer",
    "KpiRow",
    "KpiWarning",
    "Loaded",
    "MachineRuns",
    "NotCounted",
    "Periods",
    "SignalReader",
    "States",
    "Stop",
    "Timeline",
    "compute",
    "counter_increments",
    "downtime_id",
    "ideal_cycles",
    "load",
    "oee",
    "periods_of",
    "ratio",
    "reliability",
    "report_span",
    "track_states",
]
