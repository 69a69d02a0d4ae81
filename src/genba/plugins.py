"""Where connector and store kinds and node components come from: the ``genba.connectors``,
``genba.stores`` and ``genba.components`` entry-point groups. genba's own register there
exactly as a third-party package would (see ``pyproject.toml``)::

    [project.entry-points."genba.connectors"]
    mybus = "mypkg.connector:MyBusConnector"

    [project.entry-points."genba.components"]
    energy = "mypkg.energy:EnergyReport"

>>> "duckdb" in available("genba.stores")
True
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

CONNECTORS = "genba.connectors"
STORES = "genba.stores"
COMPONENTS = "genba.components"


@cache
def available(group: str) -> dict[str, str]:
    """Kind name → ``module:attr`` of every registered plugin in ``group``."""
    return {ep.name: ep.value for ep in entry_points(group=group)}


def load(group: str, kind: str) -> Any:
    """The class registered as ``kind`` in ``group``; raises KeyError naming the known kinds."""
    for ep in entry_points(group=group, name=kind):
        return ep.load()
    known = ", ".join(sorted(available(group))) or "none"
    raise KeyError(f"'{kind}' is not an installed {group.split('.')[-1][:-1]} kind; known: {known}")


@cache
def components() -> tuple[tuple[str, Any], ...]:
    """Every registered node component as (name, class), in start order: by the class's
    ``order`` (lower first), then name. A class registered under another name than its own
    ``name`` is refused (the name keys its health and its place in shutdown)."""
    found = []
    for ep in entry_points(group=COMPONENTS):
        cls = ep.load()
        if getattr(cls, "name", None) != ep.name:
            raise KeyError(
                f"component entry point {ep.name!r} loads {ep.value}, whose name is "
                f"{getattr(cls, 'name', None)!r}: register it under its own name"
            )
        found.append((int(getattr(cls, "order", 100)), ep.name, cls))
    return tuple((name, cls) for _, name, cls in sorted(found, key=lambda f: f[:2]))
