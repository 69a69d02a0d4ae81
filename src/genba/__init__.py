"""genba: connect the shop floor, keep its history, and see it live.

The public API lives here; modules and names starting with ``_`` are private.
"""

from genba._version import __version__
from genba.bus import Bus, Overflow, Subscription
from genba.clock import Clock, ManualClock, RealClock, SimulatedClock
from genba.errors import (
    BusClosedError,
    ConfigError,
    ConnectorError,
    GenbaError,
    NotConnectedError,
    NotWritableError,
    PatternError,
    QueryError,
    StoreError,
    StoreLockedError,
    UnknownTagError,
    WriteRejectedError,
    WriteTimeoutError,
)
from genba.tags import TagRegistry
from genba.types import Command, Event, Quality, SampleBatch, Tag, TagId, TagSpec

__all__ = [
    "Bus",
    "BusClosedError",
    "Clock",
    "Command",
    "ConfigError",
    "ConnectorError",
    "Event",
    "GenbaError",
    "ManualClock",
    "NotConnectedError",
    "NotWritableError",
    "Overflow",
    "PatternError",
    "Quality",
    "QueryError",
    "RealClock",
    "SampleBatch",
    "SimulatedClock",
    "StoreError",
    "StoreLockedError",
    "Subscription",
    "Tag",
    "TagId",
    "TagRegistry",
    "TagSpec",
    "UnknownTagError",
    "WriteRejectedError",
    "WriteTimeoutError",
    "__version__",
]
