"""Sparkplug B topics: ``spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]``.

>>> parse_topic("spBv1.0/berlin/DDATA/packaging-line1/filler")
Topic(group='berlin', message_type='DDATA', edge_node='packaging-line1', device='filler')
>>> str(Topic("berlin", "NBIRTH", "packaging-line1"))
'spBv1.0/berlin/NBIRTH/packaging-line1'
"""

from __future__ import annotations

from typing import NamedTuple

NAMESPACE = "spBv1.0"
MESSAGE_TYPES = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD", "STATE")


class Topic(NamedTuple):
    group: str
    message_type: str
    edge_node: str
    device: str | None = None

    def __str__(self) -> str:
        parts = [NAMESPACE, self.group, self.message_type, self.edge_node]
        if self.device:
            parts.append(self.device)
        return "/".join(parts)


def parse_topic(topic: str) -> Topic:
    """The parts of a Sparkplug B topic; ValueError names what is wrong."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        raise ValueError(
            f"{topic!r} is not a Sparkplug B topic: expected "
            f"{NAMESPACE}/group/MESSAGE_TYPE/edge_node[/device]"
        )
    if parts[2] not in MESSAGE_TYPES:
        raise ValueError(f"{topic!r}: unknown message type {parts[2]!r}; one of {MESSAGE_TYPES}")
    return Topic(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None)
