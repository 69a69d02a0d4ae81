"""The contract of a node component: a service the node runs beside its connectors.

The historian writer, retention, the forwarder and the alarms are components, registered
under the ``genba.components`` entry point exactly as a third-party package registers its own::

    [project.entry-points."genba.components"]
    energy = "mypkg.energy:EnergyReport"

A component class says its ``name`` (its key in ``/api/health`` and in the entry point), its
``order`` (lower is built and started first and may use the ones before it through
``ctx.components``; below :data:`CONNECTORS_AT` it is built before the connectors, so it sees
every tag they declare, from there on after them, so it can check the tags they declared), the
``sections`` of ``genba.toml`` it reads (:class:`~genba.config.Section`: ``GenbaConfig``, the
settings reference and ``GET /api/settings`` are composed from them) and how it stops
(:class:`Shutdown`). ``create`` builds it from the running node's parts, or returns ``None``
when its settings ask for nothing. The node runs ``run`` under supervision (a failure is
counted in health and the component started again), adds ``health()`` to ``/api/health`` under
its name and ``problems()`` to the node's (each a sentence naming the fix; any makes the node
``degraded``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from genba.bus import Bus
from genba.clock import Clock
from genba.config import GenbaConfig, Section
from genba.tags import TagRegistry

if TYPE_CHECKING:  # the historian's own components import this module
    from genba.historian import RecordLog, Store

CONNECTORS_AT = 50
"""Components of a lower ``order`` are built before the connectors, the others after."""


class Shutdown(enum.Enum):
    """How a component stops when the node does."""

    CANCEL = "cancel"
    """Cancelled together with the connectors, before the bus closes (periodic work)."""
    DRAIN = "drain"
    """Runs on until the bus is closed and it has handled everything the bus still held
    (consumers of the bus: the historian, alarms, the forwarder)."""


@dataclass(frozen=True, slots=True)
class ComponentContext:
    """What a component is built from: the node's config and parts."""

    config: GenbaConfig
    bus: Bus
    store: Store
    registry: TagRegistry
    clock: Clock
    records: RecordLog
    """The store's record log: where a component keeps what is not a sample."""
    components: Mapping[str, Component]
    """The components built before this one (lower ``order``), by name."""

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


class Component(Protocol):
    """A node service; see the module docstring."""

    name: ClassVar[str]
    order: ClassVar[int]
    sections: ClassVar[tuple[Section[Any], ...]]
    shutdown: ClassVar[Shutdown]

    @classmethod
    def create(cls, ctx: ComponentContext) -> Self | None:
        """The component for this node, or ``None`` when its settings ask for nothing."""
        ...

    async def run(self) -> None:
        """Work until cancelled (``CANCEL``) or until the bus is closed and drained (``DRAIN``)."""
        ...

    def health(self) -> dict[str, Any]:
        """What ``/api/health`` shows under the component's name (JSON-ready)."""
        ...

    def problems(self) -> list[str]:
        """What keeps it from doing its work now, each naming the fix; empty when all works."""
        ...
