"""Wire a running node together from its config.

::

    connectors ──publish──► bus ──► historian writer ──► store
                              └───► live views (API WebSocket), later analytics

Shutdown is ordered so that nothing acknowledged is lost: connectors stop first, then the
bus closes, the writer stores everything the bus still holds, and the store checkpoints.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from genba import plugins
from genba._version import __version__
from genba.bus import Bus
from genba.clock import Clock, RealClock, SimulatedClock
from genba.component import CONNECTORS_AT, Component, ComponentContext, Shutdown
from genba.config import RETENTION, ClockSettings, GenbaConfig
from genba.connectors import Connector, ConnectorContext, create_connector
from genba.deadletter import DeadLetters
from genba.historian import HistorianWriter, History, RecordLog, Store, open_store
from genba.kpi import Kpi
from genba.node._write import WritePath, WriteResult
from genba.retry import Backoff
from genba.tags import TagRegistry
from genba.types import NS_PER_MS, NS_PER_S, Quality, SampleBatch, TagId

log = logging.getLogger("genba.node")
C = TypeVar("C")
HEARTBEAT_CHECK_S = 1.0
RUNNING_SENTINEL = "node.running"
"""File in the data dir while a node runs: still there at the next start means a crash."""


def clock_from_settings(settings: ClockSettings) -> Clock:
    """The clock ``[clock]`` describes."""
    if settings.kind == "real":
        return RealClock()
    start = settings.start.timestamp() * NS_PER_S if settings.start else time.time_ns()
    return SimulatedClock(start_ns=int(start), speed=settings.speed)


def _resume_clock(settings: ClockSettings, store: Store) -> Clock:
    """The configured clock; a simulated clock with no ``start`` resumes after the newest
    stored sample when that lies ahead of now (a fast node restarted on its own data dir would
    otherwise simulate, and store, the same times twice)."""
    clock = clock_from_settings(settings)
    if settings.kind == "simulated" and settings.start is None:
        last = store.last()
        newest = int(last.ts_ns.max()) if len(last) else None
        if newest is not None and newest >= clock.now_ns():
            log.info("simulated clock resumes after the newest stored sample")
            return SimulatedClock(start_ns=newest + NS_PER_S, speed=settings.speed)
    return clock


@dataclass(slots=True)
class TaskFailures:
    """How often a background task of the node failed and was started again, and why."""

    restarts: int = 0
    last_error: str = ""


async def _restarting(
    what: str, run: Callable[[], Awaitable[None]], failed: Callable[[Exception], Awaitable[None]]
) -> None:
    """Run ``run`` until it returns; after each failure, tell ``failed``, log it and start it
    again with jittered backoff (1 s doubling to 60 s)."""
    backoff = Backoff(max_s=60.0, first_s=1.0)
    task = asyncio.current_task()
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if task is not None and task.cancelling():  # a cancellation turned into e
                raise asyncio.CancelledError from e
            await failed(e)
            delay = backoff.next_delay()
            log.exception("%s failed; restarting it in %.1f s", what, delay)
            await asyncio.sleep(delay)


async def _cancel_all(tasks: list[asyncio.Task[None]], again_after_s: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until they have ended, cancelling again any that still runs
    after ``again_after_s``: Python 3.11's ``wait_for`` drops a cancellation that arrives as
    what it waits for completes (a connector that had just connected polled on, and the
    node's shutdown waited for it forever)."""
    pending = {t for t in tasks if not t.done()}
    for t in pending:
        t.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=again_after_s)
        for t in pending:
            log.warning(
                "stopping: %s did not stop when cancelled; cancelling it again", t.get_name()
            )
            t.cancel()


class Node:
    """One genba node. ``await node.run()`` until :meth:`stop` is called.

    Everything is opened in the constructor, so a bad config or a locked store fails here,
    before anything runs. The node opens the store, the tag registry and the bus, builds every
    registered component (:mod:`genba.component`: the historian writer, retention, the
    forwarder, the alarms, any a package adds) and the connectors; it supervises them while it
    runs and shuts them down in order.
    """

    def __init__(self, config: GenbaConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.store: Store = open_store(config.store, data_dir=config.data_dir)
        try:
            self.clock = clock or _resume_clock(config.clock, self.store)
            self.registry = TagRegistry(self.store.load_tags())
            self.store.save_tags(self.registry.ensure(config.tag_specs()))
            self.bus = Bus(self.registry)
            self.components: dict[str, Component] = {}
            self.records = RecordLog(self.store)
            self.dead_letters = DeadLetters(
                lambda ts, r: self.records.put("deadletter", r["source"], r, ts)
            )
            self.connectors: list[tuple[Connector, ConnectorContext]] = []
            self.owners: dict[TagId, str] = {}
            self._build()
            self.write_path = WritePath(
                self.bus, self.registry, self.clock, self.connectors, self.owners, self.records
            )
        except BaseException:
            self.store.close()
            raise
        self.history = History(self.registry, self.store, self.clock, config.section(RETENTION))
        self.kpi = Kpi(config, self.registry, self.store, self.clock)
        self.started_ns = self.clock.now_ns()
        self._stop = asyncio.Event()
        self.running = False
        self.task_failures: dict[str, TaskFailures] = {}

    def _build(self) -> None:
        """Every registered component in order, the connectors at :data:`CONNECTORS_AT`."""
        built = False
        for name, cls in plugins.components():
            if cls.order >= CONNECTORS_AT and not built:
                self._build_connectors()
                built = True
            ctx = ComponentContext(
                self.config, self.bus, self.store, self.registry, self.clock, self.records,
                MappingProxyType(dict(self.components)),
            )  # fmt: skip
            component = cls.create(ctx)
            if component is not None:
                self.components[name] = component
        if not built:
            self._build_connectors()

    def _build_connectors(self) -> None:
        self.connectors = [
            create_connector(
                i,
                c,
                config=self.config,
                bus=self.bus,
                clock=self.clock,
                dead_letters=self.dead_letters,
                publish_durable=self.publish_durable,
                owners=self.owners,
            )
            for i, c in enumerate(self.config.connector)
        ]

    @property
    def writer(self) -> HistorianWriter:
        """The historian writer: what :meth:`publish_durable` waits on."""
        return self.component(HistorianWriter)

    def component(self, cls: type[C]) -> C:
        """The running component of class ``cls``; KeyError when this node has none (its
        settings asked for nothing, or its package is not installed)."""
        for component in self.components.values():
            if isinstance(component, cls):
                return component
        raise KeyError(
            f"this node runs no {cls.__name__} component; running: "
            f"{', '.join(self.components) or 'none'}"
        )

    @property
    def name(self) -> str:
        return self.config.node.name

    def stop(self) -> None:
        """Ask the node to shut down; :meth:`run` returns once all data is stored."""
        self._stop.set()

    def _mark_unclean_stop(self) -> None:
        """After a crash (the sentinel of the last run is still there), nothing vouches for
        the time between the node's last write and now: every tag whose last sample is good
        gets a stale mark just after the newest stored sample (docs/kpi.md)."""
        sentinel = self.config.data_dir / RUNNING_SENTINEL
        if sentinel.exists():
            last = self.store.last()
            live = last.quality < Quality.BAD
            if live.any():
                after = int(last.ts_ns.max()) + 1
                self.store.append(SampleBatch.stale_marks(last.tag_ids[live], after))
                log.warning("the node did not stop cleanly: %d tags marked stale", live.sum())
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        sentinel.write_text(f"{self.name} running since {self.clock.now_ns()}\n")

    async def _watch_heartbeats(self) -> None:
        """``[[connector]] stale_after_s``: a connector that received nothing for that long
        has its tags marked stale, at the moment the timeout ran out."""
        watched = [ctx for _, ctx in self.connectors if ctx.stale_after_s is not None]
        if not watched:
            return
        while True:
            now = self.clock.now_ns()
            for ctx in watched:
                assert ctx.stale_after_s is not None
                heard = ctx.health.last_message_ns or self.started_ns
                limit = int(ctx.stale_after_s * NS_PER_S)
                if now - heard > limit:
                    try:
                        await ctx.mark_stale(at_ns=heard + limit)
                    except Exception:  # the watch goes on for the other connectors
                        log.exception("could not mark the tags of %r stale", ctx.name)
            await asyncio.sleep(HEARTBEAT_CHECK_S)

    async def run(self) -> None:
        """Run components and connectors until :meth:`stop`; then shut down in order:
        connectors and periodic components are cancelled, the tags of every connector are
        marked stale, the bus closes, and the components that consume it finish what it held."""
        self.running = True
        try:
            await asyncio.to_thread(self._mark_unclean_stop)
            async with asyncio.TaskGroup() as tg:
                records = tg.create_task(self._contain("records", self.records.run))
                writes = tg.create_task(self._contain("write-path", self.write_path.run))
                started = {
                    name: tg.create_task(self._contain(name, c.run), name=name)
                    for name, c in self.components.items()
                }
                cancel = [
                    tg.create_task(self._supervise(c, ctx), name=f"connector:{ctx.name}")
                    for c, ctx in self.connectors
                ]
                cancel.append(tg.create_task(self._contain("heartbeats", self._watch_heartbeats)))
                cancel += [
                    started[n] for n, c in self.components.items() if c.shutdown is Shutdown.CANCEL
                ]
                await self._stop.wait()
                log.info("stopping: connectors first, then flushing the historian")
                await _cancel_all(cancel)
                # Nobody collects from now on: what the tags last said no longer holds.
                for _, ctx in self.connectors:
                    await ctx.mark_stale()
                self.bus.close()
                for name, c in self.components.items():
                    if c.shutdown is Shutdown.DRAIN:
                        await started[name]
                await writes
                records.cancel()  # it writes what is left before it ends
                await asyncio.gather(records, return_exceptions=True)
            (self.config.data_dir / RUNNING_SENTINEL).unlink(missing_ok=True)
        finally:
            self.running = False
            self.store.close()
            log.info(
                "stopped: %d samples received, %d stored",
                self.bus.stats().published_samples,
                self.writer.stats.stored_samples,
            )

    async def _contain(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a background task of the node; when it fails, count it in health (``tasks``)
        and start it again: one fault never takes the node down."""

        async def count(e: Exception) -> None:
            failed = self.task_failures.setdefault(name, TaskFailures())
            failed.restarts += 1
            failed.last_error = f"{type(e).__name__}: {e}"

        await _restarting(f"node task {name!r}", run, count)

    async def _supervise(self, connector: Connector, ctx: ConnectorContext) -> None:
        """Run a connector; on a crash record it in its health and restart it."""

        async def record(e: Exception) -> None:
            ctx.health.failed(f"{type(e).__name__}: {e}")
            await ctx.mark_stale()  # nothing collects its tags until it is back

        await _restarting(f"connector {ctx.name!r}", connector.run, record)

    async def write(self, path: str, value: float, *, origin: str) -> WriteResult:
        """Write ``value`` to the device behind tag ``path`` and read it back
        (:mod:`genba.node._write`); ``origin`` says who asked."""
        return await self.write_path.write(path, value, origin=origin)

    async def publish_durable(self, batch: SampleBatch, *, refuse: bool = False) -> None:
        """Put ``batch`` on the bus and return once it is durable (committed to the store or
        to the on-disk spool): what an acknowledgement to a sender may promise.

        While the store and the spool take nothing (a full or read-only disk), this waits
        until they do; with ``refuse`` it raises :class:`NotAcceptingError` instead (an HTTP
        sender is told to send again; anything of it already on the bus is stored once)."""
        if refuse:
            self.writer.check_accepting()
        async with self.writer.durable():
            await self.bus.publish(batch)
            await self.writer.wait_durable(self.bus.stats().published_samples, refuse=refuse)

    def disk(self) -> dict[str, Any]:
        """Free and total bytes of the data dir's disk; ``low`` under ``disk_min_free_mb``."""
        try:
            usage = shutil.disk_usage(self.config.data_dir)
        except OSError as e:
            return {"path": str(self.config.data_dir), "error": f"{type(e).__name__}: {e}"}
        return {
            "path": str(self.config.data_dir),
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "min_free_bytes": self.config.store.disk_min_free_mb * 2**20,
            "low": usage.free < self.config.store.disk_min_free_mb * 2**20,
        }

    def problems(self, disk: dict[str, Any]) -> list[str]:
        """What keeps the node from collecting and storing everything now, each with its fix;
        empty when all works (``status`` is then ``ok``)."""
        out = [p for c in self.components.values() for p in c.problems()]
        if self.records.last_error:
            out.append(
                f"records: the store refuses records ({self.records.last_error}); "
                f"{self.records.pending} waiting in memory"
            )
        if "error" in disk:
            out.append(f"disk: the data dir {disk['path']} is not reachable ({disk['error']})")
        elif disk["low"]:
            out.append(
                f"disk: {disk['free_bytes'] // 2**20} MB free on {disk['path']}, under "
                f"[store] disk_min_free_mb = {self.config.store.disk_min_free_mb}: free space "
                "or set [[retention]]"
            )
        for _, ctx in self.connectors:
            h = ctx.health
            if not h.connected and h.errors:
                out.append(f"connector {h.name!r}: not collecting: {h.last_error}")
        for name, failed in self.task_failures.items():
            out.append(f"task {name!r} failed {failed.restarts} times: {failed.last_error}")
        return out

    def health(self) -> dict[str, Any]:
        """What ``GET /api/health`` shows."""
        now = self.clock.now_ns()
        bus = self.bus.stats()
        disk = self.disk()
        problems = self.problems(disk) if self.running else []
        return {
            "status": "stopped" if not self.running else "degraded" if problems else "ok",
            "problems": problems,
            "node": self.name,
            "version": __version__,
            "now_ms": now // NS_PER_MS,
            "uptime_s": round((now - self.started_ns) / NS_PER_S / self.clock.speed, 3),
            "clock": {"kind": self.config.clock.kind, "speed": self.clock.speed},
            "tags": len(self.registry),
            "disk": disk,
            "dead_letters": {"total": sum(self.dead_letters.counts.values())},
            "records": self.records.health(),
            "tasks": {name: asdict(failed) for name, failed in self.task_failures.items()},
            "bus": {
                "published_samples": bus.published_samples,
                "published_batches": bus.published_batches,
                "published_events": bus.published_events,
                "subscriptions": [asdict(sub) for sub in bus.subscriptions],
            },
            "connectors": [ctx.health.as_dict() for _, ctx in self.connectors],
            "writes": self.write_path.health(),
        } | {name: c.health() for name, c in self.components.items()}
