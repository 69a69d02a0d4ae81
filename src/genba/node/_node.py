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
from typing import Any

from genba._version import __version__
from genba.bus import Bus
from genba.clock import Clock, RealClock, SimulatedClock
from genba.config import ClockSettings, GenbaConfig
from genba.connectors import Connector, ConnectorContext, create_connector
from genba.deadletter import DeadLetters
from genba.kpi import Kpi
from genba.node._alarms import AlarmService
from genba.node._forward import Forwarder
from genba.node._history import History
from genba.node._writer import HistorianWriter
from genba.retry import Backoff
from genba.store import Store, TimeRange, open_store
from genba.tags import TagRegistry
from genba.types import NS_PER_DAY, NS_PER_MS, NS_PER_S, Quality, SampleBatch

log = logging.getLogger("genba.node")
RETENTION_EVERY_S = 3600.0
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
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await failed(e)
            delay = backoff.next_delay()
            log.exception("%s failed; restarting it in %.1f s", what, delay)
            await asyncio.sleep(delay)


class Node:
    """One genba node. ``await node.run()`` until :meth:`stop` is called.

    Everything is opened in the constructor, so a bad config or a locked store fails here,
    before anything runs.
    """

    def __init__(self, config: GenbaConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.store: Store = open_store(config.store, data_dir=config.data_dir)
        try:
            self.clock = clock or _resume_clock(config.clock, self.store)
            self.registry = TagRegistry(self.store.load_tags())
            self.store.save_tags(self.registry.ensure(config.tag_specs()))
            self.bus = Bus(self.registry)
            self.writer = HistorianWriter(
                self.bus, self.store, config.store, spool_dir=config.data_dir / "spool"
            )
            self.registry.on_new_tags(self.writer.note_tags)
            self.forwarder = (
                Forwarder(
                    config.forward, self.bus, self.registry, config.data_dir / "forward-spool"
                )
                if config.forward is not None
                else None
            )
            self.dead_letters = DeadLetters(config.data_dir / "deadletter.jsonl")
            self.connectors: list[tuple[Connector, ConnectorContext]] = [
                create_connector(
                    i,
                    c,
                    config=config,
                    bus=self.bus,
                    clock=self.clock,
                    dead_letters=self.dead_letters,
                    publish_durable=self.publish_durable,
                )
                for i, c in enumerate(config.connector)
            ]
            self.alarms = AlarmService(
                list(config.alarm),
                config.alarms,
                bus=self.bus,
                registry=self.registry,
                clock=self.clock,
                data_dir=config.data_dir,
            )
        except BaseException:
            self.store.close()
            raise
        self.history = History(self.registry, self.store, self.clock, config.retention)
        self.kpi = Kpi(config, self.registry, self.store, self.clock)
        self.started_ns = self.clock.now_ns()
        self._stop = asyncio.Event()
        self.running = False
        self.retention_deleted = 0
        self.task_failures: dict[str, TaskFailures] = {}

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
        """Run connectors and the historian until :meth:`stop`; then shut down in order."""
        self.running = True
        try:
            await asyncio.to_thread(self._mark_unclean_stop)
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self._contain("historian-writer", self.writer.run))
                alarms = tg.create_task(self._contain("alarms", self.alarms.run))
                if self.forwarder is not None:
                    tg.create_task(self._contain("forwarder", self.forwarder.run))
                keeper = (
                    tg.create_task(self._keep_retention(), name="retention")
                    if self.config.retention
                    else None
                )
                tasks = [
                    tg.create_task(self._supervise(c, ctx), name=f"connector:{ctx.name}")
                    for c, ctx in self.connectors
                ]
                tasks.append(tg.create_task(self._contain("heartbeats", self._watch_heartbeats)))
                await self._stop.wait()
                log.info("stopping: connectors first, then flushing the historian")
                for t in [*tasks, *([keeper] if keeper else [])]:
                    t.cancel()
                await asyncio.gather(*tasks, *([keeper] if keeper else []), return_exceptions=True)
                # Nobody collects from now on: what the tags last said no longer holds.
                for _, ctx in self.connectors:
                    await ctx.mark_stale()
                self.bus.close()
                await writer
                await alarms
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

    def apply_retention(self) -> int:
        """Roll raw samples up into each rule's tiers, then delete what is older than the
        rule keeps (raw samples and tier buckets); the number of raw samples deleted."""
        now = self.clock.now_ns()
        claimed: set[int] = set()
        deleted = 0
        for rule in self.config.retention:
            ids = [t.id for t in self.registry.match(rule.tags) if t.id not in claimed]
            claimed.update(ids)
            if not ids:
                continue
            for tier in rule.tiers:
                self._roll_up(ids, tier.every_ns, now)
                if tier.keep_days is not None:
                    cutoff = now - round(tier.keep_days * NS_PER_DAY)
                    self.store.delete_rollup_before(tier.every_ns, ids, cutoff)
            deleted += self.store.delete_before(ids, now - round(rule.raw_days * NS_PER_DAY))
        self.retention_deleted += deleted
        if deleted:
            log.info("retention: deleted %d raw samples past their [[retention]] age", deleted)
        return deleted

    def _roll_up(self, ids: list[int], every: int, now: int) -> None:
        """Aggregate the closed buckets since the tier's newest one (redone: it may have
        been written while still open) from raw samples, a window at a time."""
        end = now - now % every
        start = self.store.rollup_end(every, ids)
        if start is None:  # a new tier: from the oldest raw sample of these tags
            oldest = self.store.raw(ids, TimeRange(-(2**62), end), limit=1)
            if not len(oldest):
                return
            start = int(oldest.ts_ns[0]) - int(oldest.ts_ns[0]) % every
        window = every * 10_000
        for a in range(start, end, window):
            self.store.roll_up(every, ids, TimeRange(a, min(a + window, end)))

    async def _keep_retention(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.apply_retention)
            except Exception:  # a failed sweep is retried at the next one
                log.exception("retention sweep failed; next try in %g s", RETENTION_EVERY_S)
            await asyncio.sleep(RETENTION_EVERY_S)

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
        out = []
        writer = self.writer
        if not writer.accepting:
            out.append(
                f"storage: the store and the spool take nothing ({writer.problem}); "
                f"{writer.stats.held_samples} samples held in memory, nothing acknowledged "
                "until they are written: free disk space, or mount the data dir read-write"
            )
        elif writer.problem:
            out.append(f"storage: the store failed ({writer.problem}); spooling to disk")
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
            "store": {
                "kind": self.config.store.kind,
                "accepting": self.writer.accepting,
                "retention_deleted": self.retention_deleted,
            }
            | self.writer.stats.as_dict(),
            "disk": disk,
            "dead_letters": {"total": sum(self.dead_letters.counts.values())}
            | self.dead_letters.file_health(),
            "tasks": {name: asdict(failed) for name, failed in self.task_failures.items()},
            "bus": {
                "published_samples": bus.published_samples,
                "published_batches": bus.published_batches,
                "published_events": bus.published_events,
                "subscriptions": [asdict(sub) for sub in bus.subscriptions],
            },
            "connectors": [ctx.health.as_dict() for _, ctx in self.connectors],
            "alarms": self.alarms.health(),
        } | ({"forward": self.forwarder.health()} if self.forwarder is not None else {})
