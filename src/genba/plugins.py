"""Where connector and store kinds come from: the ``genba.connectors`` and ``genba.stores``
entry-point groups. genba's own kinds register there exactly as a third-party package would
(see ``pyproject.toml``)::

    [project.entry-points."genba.connectors"]
    mybus = "mypkg.connector:MyBusConnector"

>>> "duckdb" in available("genba.stores")
True
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

CONNECTORS = "genba.connectors"
STORES = "genba.stores"


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
