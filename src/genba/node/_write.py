"""The node's write path: a setpoint goes to the device as a :class:`~genba.types.Command` on
the bus, and the answer is what the device holds afterwards.

:meth:`WritePath.write` (the API's ``POST /api/tags/{path}/write``, ``genba write``) checks the
tag — known, owned by a connector (the first that declared it), named by that connector's
``[[connector]] writable`` filters, a finite number — and publishes a ``Command``; any
component may publish one too. :meth:`WritePath.run` takes every command off the bus and hands
it to the owning connector's ``write`` (one at a time per connector, bounded by its
``write_timeout_s``), then confirms by reading back: the value the connector read from the
device, or else the tag's next samples, until one equals the value asked for or the timeout
runs out. The result — requested, read back, ``confirmed`` — answers the caller and is kept
in the record log (``command.result``), as the command itself is (``command``, by the writer).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from genba.bus import Bus, Overflow, Subscription
from genba.clock import Clock
from genba.connectors import Connector, ConnectorContext
from genba.errors import (
    ConnectorError,
    NotWritableError,
    QueryError,
    WriteRejectedError,
    WriteTimeoutError,
)
from genba.historian import RecordLog
from genba.tags import TagRegistry
from genba.types import Command, Quality, SampleBatch, TagId

RESULT = "command.result"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: ``value`` is what the device holds now (read back), ``confirmed``
    whether that is the value asked for (to float32 precision)."""

    id: str
    path: str
    connector: str
    requested: float
    value: float
    confirmed: bool
    ts_ns: int
    """When the value was read back (node clock, UTC ns)."""
    origin: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def same(a: float, b: float) -> bool:
    """Equal to float32 precision: what a 32-bit register or a Float variable gives back.

    >>> same(0.1, 0.10000000149011612), same(1.0, 1.001)
    (True, False)
    """
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


class WritePath:
    """Routes commands on the bus to the owning connectors; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        registry: TagRegistry,
        clock: Clock,
        connectors: list[tuple[Connector, ConnectorContext]],
        owners: Mapping[TagId, str],
        records: RecordLog,
    ) -> None:
        self.bus = bus
        self.registry = registry
        self.clock = clock
        self.connectors = {ctx.name: (c, ctx) for c, ctx in connectors}
        self.owners = owners
        self.records = records
        self._sub = bus.subscribe("#", name="commands", events_only=True, max_samples=10_000)
        self._waiting: dict[str, asyncio.Future[WriteResult]] = {}
        self._locks = {name: asyncio.Lock() for name in self.connectors}
        self.done = 0
        self.failed = 0

    def check(self, path: str, value: float) -> tuple[Connector, ConnectorContext]:
        """The owning connector of ``path`` when genba may write ``value`` to it."""
        tag = self.registry.get(path)  # UnknownTagError (404) with near paths
        if not math.isfinite(value):
            raise QueryError(f"cannot write {value!r} to {path!r}: give a finite number")
        owner = self.owners.get(tag.id)
        if owner is None or owner not in self.connectors:
            raise NotWritableError(
                f"no connector reads {path!r} (it came from an import or an upstream node): "
                "only a tag a connector declared can be written",
                tag=path,
            )
        connector, ctx = self.connectors[owner]
        if not ctx.may_write(path):
            raise NotWritableError(
                f"{path!r} is not writable: add a filter that names it to [[connector]] "
                f"writable of connector {owner!r} (now {list(ctx.writable)})",
                connector=owner,
                tag=path,
            )
        return connector, ctx

    async def write(self, path: str, value: float, *, origin: str) -> WriteResult:
        """Write ``value`` to the tag ``path`` through the bus; the read-back result."""
        _, ctx = self.check(path, value)
        command = Command(
            path, self.clock.now_ns(), value=value, origin=origin, id=uuid.uuid4().hex
        )
        answer: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._waiting[command.id] = answer
        # A write is carried out within its timeout (the device's answer and the read-back
        # share one deadline), plus as long again behind another write to the same connector:
        # past that nobody is carrying it out (the write path was restarted), and the caller
        # is told so instead of waiting for ever.
        bound = 2 * ctx.write_timeout_s + 1.0
        try:
            await self.bus.publish(command)
            return await asyncio.wait_for(answer, bound)
        except TimeoutError:
            raise WriteTimeoutError(
                ctx.name, path, bound, "the write was not carried out"
            ) from None
        finally:
            self._waiting.pop(command.id, None)

    async def run(self) -> None:
        """Execute every command on the bus until it closes."""
        async with asyncio.TaskGroup() as tg:
            async for item in self._sub:
                if isinstance(item, Command):
                    tg.create_task(self._execute(item))

    async def _execute(self, command: Command) -> None:
        answer = self._waiting.get(command.id)
        body: dict[str, Any] = {"id": command.id, "value": command.value, "origin": command.origin}
        try:
            connector, ctx = self.check(command.topic, command.value)
            async with self._locks[ctx.name]:
                result = await self._write(connector, ctx, command)
        except Exception as e:  # a connector's error, or a bad command from a component
            self.failed += 1
            self.records.put(RESULT, command.topic, body | {"error": str(e)}, self.clock.now_ns())
            if answer is not None and not answer.done():
                answer.set_exception(e)
            return
        self.done += 1
        self.records.put(RESULT, command.topic, result.as_dict(), result.ts_ns)
        if answer is not None and not answer.done():
            answer.set_result(result)

    async def _write(
        self, connector: Connector, ctx: ConnectorContext, command: Command
    ) -> WriteResult:
        path, value, timeout = command.topic, command.value, ctx.write_timeout_s
        deadline = asyncio.get_running_loop().time() + timeout
        with self.bus.subscribe(
            path, name=f"write-back:{command.id[:8]}", max_samples=10_000,
            overflow=Overflow.DROP_OLDEST,
        ) as samples:  # fmt: skip
            try:
                read = await asyncio.wait_for(connector.write(path, value), timeout)
            except TimeoutError:
                raise WriteTimeoutError(
                    ctx.name, path, timeout, "the device did not answer"
                ) from None
            except ConnectorError:
                raise
            except Exception as e:  # the device library's own error: a refusal
                raise WriteRejectedError(ctx.name, path, value, f"{type(e).__name__}: {e}") from e
            if read is None:
                read = await self._read_back(samples, value, deadline)
                if read is None:
                    raise WriteTimeoutError(
                        ctx.name, path, timeout, "no new value of the tag was read back"
                    )
        return WriteResult(
            command.id, path, ctx.name, value, read, same(read, value), self.clock.now_ns(),
            command.origin,
        )  # fmt: skip

    async def _read_back(
        self,
        samples: Subscription,
        value: float,
        deadline: float,
    ) -> float | None:
        """The tag's newest good sample once one equals ``value``, or at the deadline."""
        loop = asyncio.get_running_loop()
        latest: float | None = None
        while (left := deadline - loop.time()) > 0:
            for item in await samples.drain(timeout=left):
                if not isinstance(item, SampleBatch):
                    continue
                good = item.values[item.quality < Quality.BAD]
                if len(good):
                    latest = float(good[-1])
                    if same(latest, value):
                        return latest
        return latest

    def health(self) -> dict[str, Any]:
        return {"done": self.done, "failed": self.failed, "waiting": len(self._waiting)}
