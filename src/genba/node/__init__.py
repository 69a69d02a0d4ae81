"""A running node: config → store, tag registry, bus, historian writer and connectors."""

from genba.node._history import History
from genba.node._ingest import IngestResult, ingest
from genba.node._node import Node, clock_from_settings
from genba.node._writer import HistorianWriter, WriterStats

__all__ = [
    "HistorianWriter",
    "History",
    "IngestResult",
    "Node",
    "WriterStats",
    "clock_from_settings",
    "ingest",
]
