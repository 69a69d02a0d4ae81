"""Every error genba raises, rooted in :class:`GenbaError`.

Each message names the thing, the bad value and the fix, so a person can act on it
without reading the source.

::

    GenbaError
    ├── ConfigError          a genba.toml key is unknown, mistyped or out of range
    ├── UnknownTagError      a tag path that the node does not know
    ├── QueryError           a history query that cannot be answered as asked
    ├── PatternError         a tag pattern (MQTT-style wildcards) that is malformed
    ├── StoreError           the historian store failed or is unavailable
    │   ├── StoreLockedError the store file is held by another process (a running node)
    │   └── NotAcceptingError the node cannot make samples durable now (full disk, store down)
    ├── ConnectorError       a connector could not do what was asked (``connector``, ``tag``)
    │   ├── NotConnectedError   it has no link to its device or broker now
    │   ├── NotWritableError    the tag may not be written (not marked writable, no owner)
    │   ├── WriteRejectedError  the device refused the value (``value``, ``reason``)
    │   └── WriteTimeoutError   no answer, or no read-back, within ``timeout_s``
    └── BusClosedError       a publish after the bus was closed

Overload is not an error: a bounded queue that drops logs a warning on the ``genba.bus``
logger and counts the drop in :meth:`genba.bus.Bus.stats`.
"""

from __future__ import annotations


class GenbaError(Exception):
    """Root of every error genba raises on purpose."""


class ConfigError(GenbaError):
    """A configuration file or value is invalid.

    ``file`` and ``line`` locate the problem where they are known; ``key`` is the dotted
    path of the setting (``connector[0].rate_hz``).
    """

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.reason = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{message}")


class UnknownTagError(GenbaError):
    """A tag path that the node does not know."""

    def __init__(self, path: str, suggestions: list[str] | None = None) -> None:
        self.path = path
        self.suggestions = suggestions or []
        hint = (
            f" Did you mean: {', '.join(self.suggestions)}?"
            if self.suggestions
            else " List the known tags with `genba tags` or GET /api/tags."
        )
        super().__init__(f"Unknown tag '{path}'.{hint}")


class QueryError(GenbaError):
    """A history query that cannot be answered as asked (bad range, interval or aggregate)."""


class ModelError(GenbaError):
    """A model that cannot be trained, loaded or used as asked (too little data, a constant or
    missing signal, a file that fails its check); the message names the thing and the fix."""


class PatternError(GenbaError):
    """A tag pattern that is not a valid MQTT-style topic filter."""


class StoreError(GenbaError):
    """The historian store failed or is unavailable."""


class StoreLockedError(StoreError):
    """The store is held by another process, usually a running node."""


class NotAcceptingError(StoreError):
    """The node cannot make samples durable now (its disk is full or read-only, the store is
    down): nothing of the request was acknowledged; send it again after ``retry_after_s``."""

    def __init__(self, problem: str, *, retry_after_s: int = 5) -> None:
        self.problem = problem
        self.retry_after_s = retry_after_s
        super().__init__(
            f"The node cannot store samples now: {problem}. Nothing of this request is "
            f"acknowledged; send it again in {retry_after_s} s (samples already stored are "
            "not stored twice)."
        )


class ConnectorError(GenbaError):
    """A connector could not do what was asked of it; ``connector`` and ``tag`` say where."""

    def __init__(self, message: str, *, connector: str = "", tag: str = "") -> None:
        self.connector = connector
        self.tag = tag
        super().__init__(message)


class NotConnectedError(ConnectorError):
    """The connector has no link to its device or broker now: try again when it is back
    (``/api/health`` shows its ``last_error``)."""

    def __init__(self, connector: str, tag: str, why: str = "") -> None:
        super().__init__(
            f"connector {connector!r} is not connected{f' ({why})' if why else ''}; cannot "
            f"write {tag!r}: try again when it is (see /api/health)",
            connector=connector,
            tag=tag,
        )


class NotWritableError(ConnectorError):
    """The tag may not be written through genba: no connector owns it, or the owner's
    ``[[connector]] writable`` filters do not name it."""


class WriteRejectedError(ConnectorError):
    """The device (or the connector, for a tag it cannot write) refused ``value``."""

    def __init__(self, connector: str, tag: str, value: float, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(
            f"connector {connector!r} could not write {value!r} to {tag!r}: {reason}",
            connector=connector,
            tag=tag,
        )


class WriteTimeoutError(ConnectorError):
    """The device did not answer, or its new value was not read back, in time."""

    def __init__(self, connector: str, tag: str, timeout_s: float, what: str) -> None:
        self.timeout_s = timeout_s
        super().__init__(
            f"connector {connector!r}: {what} within {timeout_s:g} s for {tag!r}; the device "
            "may or may not hold the new value: read the tag before writing again",
            connector=connector,
            tag=tag,
        )


class BusClosedError(GenbaError):
    """A publish or subscribe on a bus that was closed."""
