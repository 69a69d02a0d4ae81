"""Sparkplug B host application (Eclipse Sparkplug 3.0).

Subscribes to ``spBv1.0/{group}/#``; reads NBIRTH/DBIRTH (metric names, aliases, datatypes),
NDATA/DDATA by alias, NDEATH/DDEATH. Tracks ``seq`` per edge node: on a gap, or data before a
birth, or an unknown alias, it asks for a rebirth (NCMD ``Node Control/Rebirth``) at most once
per ``rebirth_interval_s`` and records a dead letter. A value whose type is not the datatype its
birth declared is a dead letter. On a death (and when the broker link is lost) each tag of the
node or device gets a stale mark (:meth:`ConnectorContext.mark_stale`) until its rebirth. It
publishes its own STATE (``spBv1.0/STATE/{host_id}``, retained, QoS 1, the birth with the same
timestamp as the offline will), corrects an ``online: false`` on its own STATE while connected,
and says ``online: false`` before a clean disconnect (Sparkplug 3.0, host rules).
:meth:`write` sends NCMD/DCMD, by alias where the birth declared aliases.

Tag path: ``tag_prefix + group/edge_node/device/metric``; with ``edge_node_levels = "-"`` an
edge node id ``packaging-line1`` becomes the levels ``packaging/line1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
import operator
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import aiomqtt
import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError
from pydantic import BaseModel, Field

from genba.connectors._base import ConnectorContext
from genba.connectors._broker import BrokerSettings
from genba.connectors._gather import Pending, consume
from genba.errors import GenbaError, NotConnectedError, WriteRejectedError
from genba.retry import Session
from genba.sparkplug import DataType, Topic, decode, decode_columns, encode, parse_topic
from genba.types import NS_PER_MS, NS_PER_S, Event, TagSpec

log = logging.getLogger("genba.connectors.sparkplug")
REBIRTH = "Node Control/Rebirth"
STATE_PREFIX = "spBv1.0/STATE/"
# Datatypes whose values are samples; strings, bytes, datasets and templates are not.
_SAMPLE_TYPES = {
    DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64, DataType.UInt8,
    DataType.UInt16, DataType.UInt32, DataType.UInt64, DataType.Float, DataType.Double,
    DataType.Boolean,
}  # fmt: skip
_WIDTH = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
"""Bits of each signed type. Edge nodes put a negative Int8/Int16 in int_value either as two's
complement in 32 bits (Eclipse Tahu's Java, a sign-extending cast) or in the type's own width
(Tahu's Python, pysparkplug): a host reads both; genba writes the type's own width, which both
kinds of edge node read back right (Java truncates; Python checks the width)."""
_NUMERIC = {"int_value", "long_value", "float_value", "double_value", "boolean_value"}
# The value field each sample datatype travels in (Sparkplug 3.0, 6.4.16); any other is a
# type mismatch and a dead letter.
_EXPECTED = {
    DataType.Int8: "int_value", DataType.Int16: "int_value", DataType.Int32: "int_value",
    DataType.UInt8: "int_value", DataType.UInt16: "int_value", DataType.UInt32: "int_value",
    DataType.Int64: "long_value", DataType.UInt64: "long_value", DataType.Float: "float_value",
    DataType.Double: "double_value", DataType.Boolean: "boolean_value",
}  # fmt: skip
_KIND_CODE = {k: i for i, k in enumerate(sorted(_NUMERIC))}
_BITS = {"int_value": 32, "long_value": 64}
_COLUMN_KINDS = _NUMERIC | {None}  # what the columnar path decodes (None: a null metric)
_VALUE_COLUMNS = sorted(_NUMERIC)
_WHICH_VALUE = operator.methodcaller("WhichOneof", "value")


class SparkplugSettings(BrokerSettings):
    """Options of ``[[connector]]`` when ``kind = "sparkplug"`` (and the broker's, shared)."""

    group: str = Field("+", description="Sparkplug group id to follow ('+' for all).")
    host_id: str = Field("genba", description="This host application's id, for its STATE.")
    tag_prefix: str = Field("", description="Put in front of tag paths.")
    edge_node_levels: str = Field(
        "", description="Split edge node ids on this character into path levels (e.g. '-')."
    )
    rebirth_interval_s: float = Field(5.0, gt=0, description="Least time between rebirth asks.")


@dataclass
class _Metric:
    path: str
    tag_id: int
    datatype: int
    alias: int | None = None
    device: str | None = None


@dataclass
class _AliasTable:
    """A node's aliases as arrays, so DATA with 100s of metrics decodes in a few numpy ops."""

    tag_ids: npt.NDArray[np.int32]
    signed: npt.NDArray[np.int8]  # bits of a signed type (8, 16, 32, 64); 0: unsigned
    expect: npt.NDArray[np.int8]  # the value field the datatype travels in (_KIND_CODE)
    sorted_aliases: npt.NDArray[np.uint64]
    sorted_slots: npt.NDArray[np.intp]

    @classmethod
    def of(cls, aliases: dict[int, _Metric]) -> _AliasTable:
        ms = list(aliases.values())
        keys = np.fromiter(aliases, dtype=np.uint64, count=len(aliases))
        order = np.argsort(keys, kind="stable")
        return cls(
            tag_ids=np.array([m.tag_id for m in ms], dtype=np.int32),
            signed=np.array(
                [_WIDTH.get(DataType(m.datatype), 0) for m in ms],
                dtype=np.int8,
            ),
            expect=np.array([_KIND_CODE[_EXPECTED[DataType(m.datatype)]] for m in ms], dtype=np.int8),
            sorted_aliases=keys[order],
            sorted_slots=order.astype(np.intp),
        )  # fmt: skip

    def slots(self, aliases: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp] | None:
        """The slot of each alias (one binary search over the born aliases for all); None
        when one was not born."""
        if not len(self.sorted_aliases):
            return None
        at = np.searchsorted(self.sorted_aliases, aliases)
        at[at >= len(self.sorted_aliases)] = 0
        if (self.sorted_aliases[at] != aliases).any():
            return None
        return self.sorted_slots[at]


class EdgeState(enum.StrEnum):
    """Where a Sparkplug edge node's session is, as this host sees it."""

    UNBORN = "unborn"
    """Seen, but no NBIRTH since this host started (or since it lost its broker link)."""
    ONLINE = "online"
    """Born: its aliases are known and its ``seq`` is followed."""
    DEAD = "dead"
    """Its NDEATH (of the current ``bdSeq``) came: its values no longer hold."""


@dataclass(frozen=True, slots=True)
class Step:
    """What one message does to an edge node's session (:meth:`_EdgeNode.step`)."""

    read: bool
    """Read the message's metrics."""
    ask_rebirth: str = ""
    """Why to ask the edge node for a rebirth ("" for no need)."""
    node_died: bool = False
    node_born: bool = False
    device_died: bool = False
    device_born: bool = False
    data: bool = False
    """NDATA/DDATA of a born node: its tags are fresh again."""


@dataclass
class _EdgeNode:
    state: EdgeState = EdgeState.UNBORN
    seq: int = -1
    bd_seq: int | None = None
    aliases: dict[int, _Metric] = field(default_factory=dict)
    names: dict[tuple[str | None, str], _Metric] = field(default_factory=dict)
    skipped: set[tuple[str | None, str]] = field(default_factory=set)
    skipped_aliases: set[int] = field(default_factory=set)
    last_rebirth_ask: float = -1e9
    _table: _AliasTable | None = None

    @property
    def born(self) -> bool:
        return self.state is EdgeState.ONLINE

    def step(self, kind: str, seq: int, death_bd_seq: int | None = None) -> Step:
        """The session rules (Sparkplug 3.0, host application): an NDEATH counts when its
        ``bdSeq`` is the birth's; NBIRTH starts a session; anything else before a birth, and a
        gap in ``seq``, asks for a rebirth (the data of a gap is still read).

        >>> n = _EdgeNode()
        >>> n.step("NDATA", 0).ask_rebirth
        'NDATA before NBIRTH'
        >>> n.state = EdgeState.ONLINE; n.seq = 4
        >>> n.step("NDATA", 6)
        Step(read=True, ask_rebirth='sequence gap: expected seq 5, got 6', node_died=False, node_born=False, device_died=False, device_born=False, data=True)
        >>> n.step("NDEATH", 0, death_bd_seq=None).node_died, n.state.value
        (True, 'dead')
        """
        if kind == "NDEATH":
            if self.bd_seq is None or death_bd_seq is None or death_bd_seq == self.bd_seq:
                self.state = EdgeState.DEAD
                return Step(read=False, node_died=True)
            return Step(read=False)  # the death of an older session
        if kind == "NBIRTH":
            return Step(read=True, node_born=True)  # the caller calls rebirth()
        if not self.born:
            return Step(read=False, ask_rebirth=f"{kind} before NBIRTH")
        expected = (self.seq + 1) % 256
        gap = f"sequence gap: expected seq {expected}, got {seq}" if seq != expected else ""
        self.seq = seq
        if kind == "DDEATH":
            return Step(read=False, ask_rebirth=gap, device_died=True)
        return Step(
            read=True, ask_rebirth=gap, device_born=kind == "DBIRTH",
            data=kind in ("NDATA", "DDATA"),
        )  # fmt: skip

    def rebirth(self, p: Any) -> None:
        """An NBIRTH: a new session; every alias and name is learned again."""
        self.state, self.seq = EdgeState.ONLINE, p.seq
        self.aliases.clear()
        self.names.clear()
        self.skipped.clear()
        self.skipped_aliases.clear()
        self._table = None
        self.bd_seq = next((m.long_value for m in p.metrics if m.name == "bdSeq"), None)

    def table(self) -> _AliasTable:
        """The alias table, rebuilt after a birth changed the aliases."""
        if self._table is None or len(self._table.sorted_aliases) != len(self.aliases):
            self._table = _AliasTable.of(self.aliases)
        return self._table


def _as_floats(kind: str, column: Any, signed: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
    """One value column of DATA metrics as floats; ``signed`` gives each metric's signed
    width (0: unsigned), for the two's-complement fields."""
    if kind == "long_value":  # Int64 travels as two's complement in 64 bits
        v64 = np.array(column, dtype=np.uint64)
        return np.where(signed == 64, v64.view(np.int64), v64).astype(np.float64)
    if kind == "int_value":  # Int8/16/32 as two's complement in 32 bits
        return int_values(np.array(column, dtype=np.int64), signed)
    return np.array(column, dtype=np.float64)


def _value_kinds(
    c: Any, metrics: Any, n: int
) -> tuple[npt.NDArray[np.int8], dict[str, Any]] | None:
    """Which value field each of ``n`` metrics has (a kind code, −1 for none) and the rows
    of each value column; None when the columns cannot be matched to metrics. When every
    metric has the same field the counts say so; otherwise one pass over ``metrics``."""
    counts = {k: len(getattr(c, k)) for k in _VALUE_COLUMNS}
    present = [k for k in _VALUE_COLUMNS if counts[k]]
    if len(present) == 1 and counts[present[0]] == n:
        return np.full(n, _KIND_CODE[present[0]], dtype=np.int8), {present[0]: slice(None)}
    which = list(map(_WHICH_VALUE, metrics))
    if not set(which) <= _COLUMN_KINDS:
        return None
    code = np.fromiter((_KIND_CODE.get(w, -1) for w in which), dtype=np.int8, count=n)
    rows = {k: np.flatnonzero(code == _KIND_CODE[k]) for k in present}
    if any(len(rows[k]) != counts[k] for k in present):
        return None  # a metric with two value fields: the one-by-one path decides
    return code, rows


def _metric_times(
    column: Any, n: int, default_ts: int, latest_ms: int
) -> npt.NDArray[np.int64] | None:
    """Each metric's time in ns: its own timestamp, else ``default_ts``; None when some
    metrics have one and others not, or one is past ``latest_ms``."""
    if len(column) == 0:
        return np.full(n, default_ts, dtype=np.int64)
    if len(column) != n:
        return None
    stamps = np.array(column, dtype=np.uint64)
    if stamps.max() > latest_ms:
        return None
    return np.where(stamps == 0, default_ts, stamps.astype(np.int64) * NS_PER_MS)


class SparkplugConnector:
    """A Sparkplug B host: edge nodes' metrics become tags."""

    kind: ClassVar[str] = "sparkplug"
    Settings: ClassVar[type[BaseModel]] = SparkplugSettings

    def __init__(self, settings: SparkplugSettings, ctx: ConnectorContext) -> None:
        self.s = settings
        self.ctx = ctx
        self.nodes: dict[tuple[str, str], _EdgeNode] = {}
        self.stale: set[str] = set()
        self.rebirths_requested = 0
        self._client: aiomqtt.Client | None = None
        self._pending = Pending()
        self._events: list[Event] = []
        self._outbox: list[tuple[str, bytes, bool]] = []  # topic, payload, retained STATE
        self._stale_tags: list[int] = []
        self._session_ms = 0

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        if not isinstance(settings, SparkplugSettings):
            raise TypeError(f"expected SparkplugSettings, got {type(settings).__name__}")
        return cls(settings, ctx)

    # -- paths ----------------------------------------------------------------------------
    def _path(self, t: Topic, metric: str) -> str:
        edge = (
            t.edge_node.replace(self.s.edge_node_levels, "/")
            if self.s.edge_node_levels
            else t.edge_node
        )
        parts = [t.group, edge] + ([t.device] if t.device else []) + [metric]
        return self.s.tag_prefix + "/".join(parts)

    # -- messages -------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> None:
        """Decode one Sparkplug message into pending samples, requests and dead letters. A
        message that cannot be used is a dead letter for itself alone: the connector, and
        every other edge node on it, carries on."""
        try:
            self._handle(topic, payload)
        except Exception as e:  # a hostile or broken message must not stop collection
            self.ctx.reject(
                f"cannot use this message: {type(e).__name__}: {e}", topic=topic, payload=payload
            )

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic.startswith(STATE_PREFIX):
            self._host_state(topic, payload)
            return  # host applications' STATE: not data
        try:
            t = parse_topic(topic)
        except ValueError as e:
            self.ctx.reject(str(e), topic=topic, payload=payload)
            return
        if t.message_type in ("NCMD", "DCMD", "STATE"):
            return  # commands are ours or another host's; not data
        try:
            p = decode(payload)
        except DecodeError as e:
            self.ctx.reject(f"not a Sparkplug B payload: {e}", topic=topic, payload=payload)
            return
        node = self._edge_node(t, topic, payload)
        if node is not None and self._session(t, node, p, topic, payload):
            self._metrics(t, node, p, topic, payload)

    def _edge_node(self, t: Topic, topic: str, payload: bytes) -> _EdgeNode | None:
        """The edge node ``t`` comes from, tracked from its first message (None, a dead
        letter, past ``max_tags`` edge nodes)."""
        node = self.nodes.get((t.group, t.edge_node))
        if node is None:
            if len(self.nodes) >= self.ctx.max_tags:  # a flood of made-up edge node names
                self.ctx.reject(
                    f"more than max_tags = {self.ctx.max_tags} edge nodes; raise "
                    "[[connector]] max_tags if the plant really has that many",
                    topic=topic,
                    payload=payload,
                )
                return None
            node = self.nodes[(t.group, t.edge_node)] = _EdgeNode()
        return node

    def _session(self, t: Topic, node: _EdgeNode, p: Any, topic: str, payload: bytes) -> bool:
        """Apply what the message does to the edge node's session (:meth:`_EdgeNode.step`);
        True when its metrics are to be read."""
        death_bd = (  # only a death needs it: looking costs a pass over every metric
            next((m.long_value for m in p.metrics if m.name == "bdSeq"), None)
            if t.message_type == "NDEATH"
            else None
        )
        step = node.step(t.message_type, p.seq, death_bd)
        if step.node_born:
            node.rebirth(p)
            self._unstale(f"{t.group}/{t.edge_node}")
        if step.ask_rebirth:
            where = "" if node.born else f" from {t.group}/{t.edge_node}"
            self._ask_rebirth(t, node, step.ask_rebirth + where, topic, payload)
        if step.node_died:
            self._mark_stale(t, device=None)
            self._stale_tags.extend(m.tag_id for m in node.names.values())
        if step.device_died:
            self._mark_stale(t, device=t.device)
            self._stale_tags.extend(m.tag_id for m in node.names.values() if m.device == t.device)
        if step.device_born:
            self._unstale(f"{t.group}/{t.edge_node}/{t.device}")
        if step.data and self.stale:
            self._fresh(t)
        return step.read

    def _metrics(self, t: Topic, node: _EdgeNode, p: Any, topic: str, payload: bytes) -> None:
        """The samples of a birth or DATA message; metrics that cannot be used are one dead
        letter for the message, the rest are stored."""
        birth = t.message_type in ("NBIRTH", "DBIRTH")
        now = self.ctx.clock.now_ns()
        latest_ms = (now + int(self.s.max_future_s * NS_PER_S)) // NS_PER_MS
        if p.timestamp > latest_ms:
            self.ctx.reject(
                f"payload timestamp {p.timestamp} ms is more than max_future_s = "
                f"{self.s.max_future_s:g} s ahead of this node's clock",
                topic=topic,
                payload=payload,
            )
            return
        default_ts = p.timestamp * NS_PER_MS if p.timestamp else now
        if not birth and node.aliases and self._columns(node, p, payload, default_ts, latest_ms):
            return
        problems: list[str] = []
        for m in p.metrics:
            metric = (
                self._born_metric(t, node, m, problems)
                if birth
                else self._data_metric(t, node, m, topic, payload)
            )
            if metric is not None:
                self._sample(metric, m, default_ts, latest_ms, problems)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.ctx.reject(
                f"{len(problems)} metric(s) refused, the rest stored: {problems[0]}{more}",
                topic=topic,
                payload=payload,
            )

    def _born_metric(
        self, t: Topic, node: _EdgeNode, m: Any, problems: list[str]
    ) -> _Metric | None:
        """A metric of a birth, declared as a tag (None: not a sample, or refused)."""
        if not m.name or m.name in ("bdSeq", REBIRTH):
            return None
        if not isinstance(m.name, str) or not m.name.isprintable():
            problems.append(f"metric name {m.name!r} is not printable UTF-8 text")
            return None
        if m.datatype not in _SAMPLE_TYPES:
            node.skipped.add((t.device, m.name))
            if m.HasField("alias"):
                node.skipped_aliases.add(m.alias)
            return None
        path = self._path(t, m.name)
        try:
            tag = self.ctx.declare([TagSpec(path)])[0]
        except (ValueError, GenbaError) as e:  # e.g. '#' or '+' in a metric name
            problems.append(f"metric {m.name!r} cannot be a tag: {e}")
            return None
        alias = m.alias if m.HasField("alias") else None
        metric = _Metric(path, tag.id, m.datatype, alias, t.device)
        node.names[(t.device, m.name)] = metric
        if alias is not None:
            node.aliases[alias] = metric
            node._table = None
        return metric

    def _data_metric(
        self, t: Topic, node: _EdgeNode, m: Any, topic: str, payload: bytes
    ) -> _Metric | None:
        """The born metric a DATA metric is, by alias or name (None: announced as not a
        sample, or unknown: a rebirth is asked for)."""
        found = (
            node.aliases.get(m.alias) if m.HasField("alias") else node.names.get((t.device, m.name))
        )
        if found is None:
            if (t.device, m.name) in node.skipped or m.alias in node.skipped_aliases:
                return None  # a string or other non-sample metric announced in the birth
            self._ask_rebirth(
                t, node, f"unknown metric (alias {m.alias}, name {m.name!r})", topic, payload
            )
        return found

    def _sample(
        self, metric: _Metric, m: Any, default_ts: int, latest_ms: int, problems: list[str]
    ) -> None:
        """Add ``m``'s value to the pending samples, or say in ``problems`` why not."""
        which = m.WhichOneof("value")
        expected = _EXPECTED[DataType(metric.datatype)]
        if not m.is_null and which is not None and which != expected:
            problems.append(
                f"{metric.path}: a {which} value where its birth declared "
                f"{DataType(metric.datatype).name} (which travels as {expected}); fix the edge "
                "node's datatype"
            )
            return
        value = self._number(m, metric.datatype)
        if value is None:
            return
        if not math.isfinite(value):
            problems.append(f"{metric.path}: {value} is not a finite number")
        elif m.timestamp > latest_ms:
            problems.append(
                f"{metric.path}: timestamp {m.timestamp} ms is more than max_future_s = "
                f"{self.s.max_future_s:g} s ahead of this node's clock"
            )
        else:
            self._pending.add(
                metric.tag_id, m.timestamp * NS_PER_MS if m.timestamp else default_ts, value
            )

    def _columns(
        self, node: _EdgeNode, p: Any, payload: bytes, default_ts: int, latest_ms: int
    ) -> bool:
        """DATA whose metrics all go by born aliases, read as columns: the payload parsed
        again with every metric field as one column (:func:`genba.sparkplug.decode_columns`),
        so no Python object per metric is touched when every metric carries the same value
        field; with mixed value fields, one pass over the metrics says which each one has.

        Returns False, having taken nothing, when a metric needs the one-by-one path: it goes
        by name or without an alias, its alias was not born as a sample, its value is not a
        finite number or of another type than its birth said, some metrics have a timestamp
        and others not, or a timestamp is too far ahead.
        """
        n = len(p.metrics)
        c = decode_columns(payload).metrics
        if not n or len(c.alias) != n or any(c.name):
            return False
        table = node.table()
        s = table.slots(np.array(c.alias, dtype=np.uint64))
        if s is None:
            return False
        kinds = _value_kinds(c, p.metrics, n)
        if kinds is None:
            return False
        code, rows = kinds
        if ((code >= 0) & (code != table.expect[s])).any():
            return False  # a type mismatch: the one-by-one path names it in a dead letter
        values = np.zeros(n, dtype=np.float64)
        for k, at in rows.items():
            values[at] = _as_floats(k, getattr(c, k), table.signed[s][at])
        if not np.isfinite(values).all():
            return False
        ts = _metric_times(c.timestamp, n, default_ts, latest_ms)
        if ts is None:
            return False
        tag_ids = table.tag_ids[s]
        if (code < 0).any():  # null metrics (is_null) carry no sample
            keep = code >= 0
            tag_ids, ts, values = tag_ids[keep], ts[keep], values[keep]
        self._pending.add_columns(tag_ids, ts, values)
        return True

    @staticmethod
    def _number(m: Any, datatype: int) -> float | None:
        """The metric's value as a float; None for nulls and non-numeric types."""
        if m.is_null:
            return None
        which = m.WhichOneof("value")
        if which not in _NUMERIC:
            return None  # strings, bytes, datasets: not samples
        v = getattr(m, which)
        if which == "int_value":
            bits = np.array([_WIDTH.get(DataType(datatype), 0)], dtype=np.int8)
            return float(int_values(np.array([v], dtype=np.int64), bits)[0])
        if which == "long_value" and datatype == DataType.Int64 and v >= 1 << 63:
            v -= 1 << 64
        return float(v)

    def _ask_rebirth(
        self, t: Topic, node: _EdgeNode, reason: str, topic: str, payload: bytes
    ) -> None:
        self.ctx.reject(f"{reason}; rebirth requested", topic=topic, payload=payload)
        now = time.monotonic()
        if now - node.last_rebirth_ask < self.s.rebirth_interval_s:
            return
        node.last_rebirth_ask = now
        self.rebirths_requested += 1
        cmd = encode(
            timestamp=int(time.time() * 1000),
            metrics=[{"name": REBIRTH, "datatype": DataType.Boolean, "boolean_value": True}],
        )
        self._outbox.append((str(Topic(t.group, "NCMD", t.edge_node)), cmd, False))

    def _mark_stale(self, t: Topic, device: str | None) -> None:
        key = f"{t.group}/{t.edge_node}" + (f"/{device}" if device else "")
        self.stale.add(key)
        self._events.append(Event(key, self.ctx.clock.now_ns(), "stale", {"source": self.ctx.name}))

    def _fresh(self, t: Topic) -> None:
        """Data flows again from this node (and device): no longer stale."""
        node_key = f"{t.group}/{t.edge_node}"
        self.stale.discard(node_key)
        if t.device:
            self.stale.discard(f"{node_key}/{t.device}")

    def _unstale(self, key: str) -> None:
        self.stale = {k for k in self.stale if not (k == key or k.startswith(key + "/"))}

    # -- writes ---------------------------------------------------------------------------
    async def write(self, path: str, value: float) -> float | None:
        """Send an NCMD or DCMD setting the metric behind tag ``path`` to ``value``: by alias
        where its birth declared one, signed integers as two's complement (spec 6.4.16). The
        edge node's next NDATA/DDATA of the metric reads it back."""
        for (group, edge), node in self.nodes.items():
            for (device, name), metric in node.names.items():
                if metric.path != path:
                    continue
                if self._client is None:
                    raise NotConnectedError(self.ctx.name, path, "no link to the broker")
                try:
                    m = command_metric(name, metric.datatype, metric.alias, value)
                except (OverflowError, ValueError, TypeError) as e:
                    raise WriteRejectedError(self.ctx.name, path, value, str(e)) from e
                cmd = encode(timestamp=int(time.time() * 1000), metrics=[m])
                kind = "DCMD" if device is not None else "NCMD"
                try:
                    await self._client.publish(str(Topic(group, kind, edge, device)), cmd, qos=0)
                except aiomqtt.MqttError as e:
                    raise NotConnectedError(self.ctx.name, path, str(e)) from e
                return None
        raise WriteRejectedError(
            self.ctx.name, path, value, "not a metric of an edge node this host has seen born"
        )

    def _host_state(self, topic: str, payload: bytes) -> None:
        """Another client set our own STATE to offline while we are connected: correct it
        (Sparkplug 3.0, host rule: a host keeps its STATE true while it is online)."""
        if topic != STATE_PREFIX + self.s.host_id or self._client is None:
            return
        try:
            online = json.loads(payload).get("online")
        except (ValueError, AttributeError):
            online = None
        if online is not True:
            self._outbox.append((topic, self._state(True), True))

    # -- the loop -------------------------------------------------------------------------
    async def flush(self) -> None:
        self.ctx.health.details = {
            "stale": sorted(self.stale),
            "rebirths_requested": self.rebirths_requested,
            "edge_nodes_online": sorted(f"{g}/{e}" for (g, e), n in self.nodes.items() if n.born),
        }
        if self._outbox and self._client is not None:
            outbox, self._outbox = self._outbox, []
            for topic, payload, retain in outbox:
                await self._client.publish(topic, payload, qos=1 if retain else 0, retain=retain)
        for ev in self._events:
            await self.ctx.bus.publish(ev)
        self._events.clear()
        if self._stale_tags:  # before data that may follow (a rebirth in the same batch)
            ids, self._stale_tags = self._stale_tags, []
            await self.ctx.mark_stale(ids)
        await self.ctx.publish(self._pending.take())

    def _state(self, online: bool) -> bytes:
        """A STATE payload; the birth carries the same timestamp as this session's will."""
        return json.dumps({"online": online, "timestamp": self._session_ms}).encode()

    async def run(self) -> None:
        await self.ctx.keep_connected(
            self._serve, errors=(aiomqtt.MqttError,), max_s=self.s.reconnect_max_s,
            on_lost=self._lost,
        )  # fmt: skip

    async def _serve(self, session: Session) -> None:
        state_topic = STATE_PREFIX + self.s.host_id
        self._session_ms = int(time.time() * 1000)
        will = aiomqtt.Will(state_topic, self._state(False), qos=1, retain=True)
        async with aiomqtt.Client(
            self.s.host, self.s.port,
            identifier=f"genba-{self.ctx.config.node.name}-{self.ctx.name}",
            username=self.s.username,
            password=self.s.secret(),
            will=will,
            tls_params=self.s.tls_params(),
        ) as client:  # fmt: skip
            self._client = client
            try:
                # our own STATE whatever the group filter: to correct it if set offline
                await client.subscribe(state_topic, qos=1)
                await client.subscribe(f"spBv1.0/{self.s.group}/#", qos=1)
                await client.publish(state_topic, self._state(True), qos=1, retain=True)
                session.connected()
                await consume(
                    client, self.handle, self.flush, batch_ms=self.s.batch_ms, name=self.ctx.name
                )
            except asyncio.CancelledError:
                # A clean stop: say so before the link closes (the will is for crashes).
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await client.publish(state_topic, self._state(False), qos=1, retain=True)
                raise
            finally:
                self._client = None

    async def _lost(self, _: BaseException) -> None:
        """The broker is gone: every edge node we saw born may die or be reborn unseen."""
        for (group, edge), node in self.nodes.items():
            if node.born:
                self._mark_stale(Topic(group, "NDEATH", edge), device=None)


def int_values(raw: npt.NDArray[np.int64], bits: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
    """``int_value`` fields as numbers. A signed type (``bits`` 8, 16 or 32; 0: unsigned)
    travels as two's complement, in 32 bits or in its own width (see ``_WIDTH``).

    >>> int_values(np.array([2**32 - 5, 2**16 - 5, 2**16 - 5, 7]), np.array([16, 16, 0, 8], dtype=np.int8)).tolist()
    [-5.0, -5.0, 65531.0, 7.0]
    """
    w = bits.astype(np.int64)
    signed = w > 0
    own = signed & (w < 32) & (raw >= 1 << np.maximum(w - 1, 0)) & (raw < 1 << w)
    out = np.where(own, raw - (1 << w), raw)
    return np.where(signed & (out >= 1 << 31), out - (1 << 32), out).astype(np.float64)


def command_metric(name: str, datatype: int, alias: int | None, value: float) -> dict[str, Any]:
    """The metric of an NCMD/DCMD setting ``value``: by alias when the birth gave one (then
    with no name), in the field its datatype travels in, signed integers as two's complement.

    >>> command_metric("speed_sp", DataType.Int16, 7, -5.0)["int_value"]
    65531
    >>> sorted(command_metric("run", DataType.Boolean, None, 1.0))
    ['boolean_value', 'datatype', 'name']
    """
    dtype = DataType(datatype)
    field_name = _EXPECTED.get(dtype)
    if field_name is None:
        raise ValueError(f"{name}: cannot write a {dtype.name} metric; only numbers and booleans")
    v: float | int | bool
    if dtype == DataType.Boolean:
        v = bool(value)
    elif field_name in ("float_value", "double_value"):
        v = float(value)
    else:
        if value != int(value):
            raise ValueError(f"{name}: {value} is not a whole number for a {dtype.name} metric")
        bits = _WIDTH.get(dtype, _BITS[field_name])
        v = int(value) & ((1 << bits) - 1)  # two's complement in the type's own width
    out: dict[str, Any] = {"datatype": dtype, field_name: v}
    if alias is not None:
        out["alias"] = alias
    else:
        out["name"] = name
    return out
