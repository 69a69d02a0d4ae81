"""A running node: config → store, tag registry, bus, components (historian writer,
retention, forwarder, alarms) and connectors."""

from genba.node._alarms import AlarmService
from genba.node._component import Component, ComponentContext, Shutdown
from genba.node._forward import Forwarder
from genba.node._history import (
    BucketHistory,
    History,
    RawHistory,
    Resampled,
    Sample,
    TagState,
    ValueAt,
)
from genba.node._ingest import IngestResult, ingest
from genba.node._node import Node, clock_from_settings
from genba.node._retention import Retention
from genba.node._write import WriteResult
from genba.node._writer import HistorianWriter, WriterStats

__all__ = [
    "AlarmService",
    "BucketHistory",
    "Component",
    "ComponentContext",
    "Forwarder",
    "HistorianWriter",
    "History",
    "IngestResult",
    "Node",
    "RawHistory",
    "Resampled",
    "Retention",
    "Sample",
    "Shutdown",
    "TagState",
    "ValueAt",
    "WriteResult",
    "WriterStats",
    "clock_from_settings",
    "ingest",
]
