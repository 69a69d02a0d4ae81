"""Southbound connectors: each brings one kind of equipment onto the bus.

Every connector has the same few verbs (see :class:`Connector`), so knowing one is knowing
all. New kinds register under the ``genba.connectors`` entry-point group.
"""

from genba.connectors._base import Connector, ConnectorContext, ConnectorHealth, create_connector

__all__ = ["Connector", "ConnectorContext", "ConnectorHealth", "create_connector"]
