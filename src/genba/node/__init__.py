"""A running node: config → store, tag registry, bus, components (the historian writer,
retention, forwarder, alarms) and connectors, supervised and stopped in order."""

from genba.node._alarms import AlarmService
from genba.node._forward import Forwarder
from genba.node._ingest import IngestResult, ingest, ingest_table
from genba.node._node import Node, clock_from_settings
from genba.node._rul import RulWatch
from genba.node._write import WriteResult

__all__ = [
    "AlarmService",
    "Forwarder",
    "IngestResult",
    "Node",
    "RulWatch",
    "WriteResult",
    "clock_from_settings",
    "ingest",
    "ingest_table",
]
