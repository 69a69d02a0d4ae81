"""Sparkplug B (Eclipse Sparkplug 3.0): payload encoding and the topic namespace.

The protobuf schema is built here from the specification's field numbers (``_proto.py``), in
a descriptor pool of its own, so no generated or third-party code is committed.
"""

from genba.sparkplug._proto import DataType, Metric, Payload, decode, decode_columns, encode
from genba.sparkplug._topic import NAMESPACE, Topic, parse_topic

__all__ = [
    "NAMESPACE",
    "DataType",
    "Metric",
    "Payload",
    "Topic",
    "decode",
    "decode_columns",
    "encode",
    "parse_topic",
]
