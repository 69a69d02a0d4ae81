"""Settings sections that node components bring: ``genba.toml`` is composed from them.

The core of a node (``[node]``, ``[clock]``, ``[store]``, ``[[connector]]``, ``[[machine]]`` and
the production model) is declared in :class:`~genba.config.GenbaConfig`. Every other top-level
table belongs to a component registered under the ``genba.components`` entry point (the
historian's retention, the forwarder, the alarms; a third-party package's own service): its
class lists its :class:`Section` objects, and :func:`config_model` adds each as a field. A
component reads its settings back, typed, with ``config.section(SECTION)``.

>>> from genba.config import config_model, FORWARD
>>> "forward" in config_model().model_fields
True
>>> config_model()().section(FORWARD) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel

T = TypeVar("T", covariant=True)


@dataclass(frozen=True, eq=False)
class Section(Generic[T]):
    """One top-level table (``[key]``) or table array (``[[key]]``) of ``genba.toml``.

    ``annotation`` is what pydantic validates it as (``MySettings``, ``MySettings | None`` or
    ``list[MySettings]``) and ``default`` makes its value when the file has none. ``check``
    runs on the whole validated config (cross-references: a unique name, a tag that exists)
    and raises ``ValueError`` naming the fix. ``doc_title`` is its heading in docs/config.md.
    """

    key: str
    annotation: Any
    default: Callable[[], T]
    description: str = ""
    check: Callable[[Any], None] | None = None
    subtables: tuple[tuple[str, type[BaseModel]], ...] = field(default=())
    """Nested tables documented under this one, e.g. ``("tiers", TierSettings)``."""

    @property
    def many(self) -> bool:
        """A table array ``[[key]]``."""
        return get_origin(self.annotation) is list

    @property
    def model(self) -> type[BaseModel]:
        """The pydantic model of one table of this section."""
        for arg in (self.annotation, *get_args(self.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
        raise TypeError(f"section {self.key!r}: {self.annotation!r} names no pydantic model")

    @property
    def title(self) -> str:
        return f"[[{self.key}]]" if self.many else f"[{self.key}]"
