"""The Sparkplug B payload schema (``org.eclipse.tahu.protobuf.Payload``), built at import.

Field numbers follow the Sparkplug 3.0 specification's ``sparkplug_b.proto`` (proto2).
genba uses the scalar part of ``Metric``; fields it does not model (metadata, properties,
datasets, templates) keep their numbers free and are skipped when decoding.

>>> data = encode(timestamp=1, seq=3, metrics=[{"name": "temp", "alias": 7, "datatype": DataType.Double, "double_value": 21.5}])
>>> p = decode(data)
>>> (p.seq, p.metrics[0].name, p.metrics[0].double_value)
(3, 'temp', 21.5)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


class DataType(enum.IntEnum):
    """Sparkplug B metric data types (specification 6.4.16)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str = "",
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, type=kind)
    f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


_METRIC_FIELDS = (
    ("name", 1, _F.TYPE_STRING, False),
    ("alias", 2, _F.TYPE_UINT64, False),
    ("timestamp", 3, _F.TYPE_UINT64, False),
    ("datatype", 4, _F.TYPE_UINT32, False),
    ("is_historical", 5, _F.TYPE_BOOL, False),
    ("is_transient", 6, _F.TYPE_BOOL, False),
    ("is_null", 7, _F.TYPE_BOOL, False),
    ("int_value", 10, _F.TYPE_UINT32, True),
    ("long_value", 11, _F.TYPE_UINT64, True),
    ("float_value", 12, _F.TYPE_FLOAT, True),
    ("double_value", 13, _F.TYPE_DOUBLE, True),
    ("boolean_value", 14, _F.TYPE_BOOL, True),
    ("string_value", 15, _F.TYPE_STRING, True),
    ("bytes_value", 16, _F.TYPE_BYTES, True),
)
"""Metric's scalar fields: name, number, type, and whether it is one of the ``value`` oneof."""
_COLUMNS = ("name", "alias", "timestamp", "int_value", "long_value", "float_value",
            "double_value", "boolean_value")  # fmt: skip
"""The Metric fields :func:`decode_columns` gathers."""


def _message_class(fd: descriptor_pb2.FileDescriptorProto, name: str) -> Any:
    pool = descriptor_pool.DescriptorPool()  # our own pool: no clash with other Sparkplug code
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{fd.package}.{name}"))


def _payload(package: str, metric_type: str, *, repeated: bool) -> tuple[Any, Any]:
    fd = descriptor_pb2.FileDescriptorProto(
        name=f"genba/{package}.proto", package=package, syntax="proto2"
    )
    payload = fd.message_type.add(name="Payload")
    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, repeated=repeated,
           type_name=f".{package}.Payload.{metric_type}")  # fmt: skip
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    return fd, payload.nested_type.add(name=metric_type)


def _build() -> tuple[Any, Any]:
    fd, metric = _payload("org.eclipse.tahu.protobuf", "Metric", repeated=True)
    payload = fd.message_type[0]
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    metric.oneof_decl.add(name="value")
    for name, number, kind, in_value in _METRIC_FIELDS:
        _field(metric, name, number, kind, oneof=0 if in_value else None)
    p = _message_class(fd, "Payload")
    return p, p.Metric


Payload, Metric = _build()


def _build_columns() -> Any:
    """The same wire format read another way: ``metrics`` as one message of repeated
    scalars. A parser merges the occurrences of a singular message field, and merging
    concatenates repeated fields, so the runtime's C code hands out each field of every metric
    as one column (Sparkplug 3.0's field numbers; protobuf encoding, "Last One Wins" and
    merging of embedded messages)."""
    fd, columns = _payload("genba.sparkplug.columns", "Metrics", repeated=False)
    for name, number, kind, _ in _METRIC_FIELDS:
        if name in _COLUMNS:
            _field(columns, name, number, kind, repeated=True)
    return _message_class(fd, "Payload")


_ColumnsPayload = _build_columns()


def decode_columns(data: bytes) -> Any:
    """Parse a serialised Payload with each metric field as one column of every metric:
    ``decode_columns(data).metrics.double_value`` holds the double values of all metrics, in
    order (raises ``google.protobuf.message.DecodeError``). Which metric a value belongs to is
    known only where the counts say so: every metric has the field, or none has.

    >>> data = encode(timestamp=1, metrics=[{"alias": 7, "double_value": 21.5},
    ...                                     {"alias": 8, "double_value": 3.0}])
    >>> c = decode_columns(data).metrics
    >>> list(c.alias), list(c.double_value), len(c.timestamp)
    ([7, 8], [21.5, 3.0], 0)
    """
    p = _ColumnsPayload()
    p.ParseFromString(data)
    return p


def encode(
    *, timestamp: int, metrics: Iterable[Mapping[str, Any]], seq: int | None = None
) -> bytes:
    """A serialised Payload; each metric is a mapping of Metric field names to values."""
    p = Payload(timestamp=timestamp)
    if seq is not None:
        p.seq = seq
    for m in metrics:
        p.metrics.add(**m)
    data: bytes = p.SerializeToString()
    return data


def decode(data: bytes) -> Any:
    """Parse a serialised Payload (raises ``google.protobuf.message.DecodeError``)."""
    p = Payload()
    p.ParseFromString(data)
    return p
