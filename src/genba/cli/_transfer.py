"""``genba export`` and ``genba import``: history out to Parquet/CSV files and back in.

Both work with the node stopped (on the store directly) or running (through its API, so a
running DuckDB node, which holds its file, can still export; and an import is back-filled
through the node's ingest, between live data, without stopping it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import httpx

from genba.config import GenbaConfig
from genba.errors import GenbaError, StoreLockedError
from genba.timeparse import parse_time

EPOCH = "1970-01-01T00:00:00Z"


def _say(msg: str) -> None:
    click.echo(f"genba: {msg}", err=True)


def _node_url(config: GenbaConfig) -> str:
    return f"http://{config.node.http}"


def _format(out: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("parquet", "csv"):
        return suffix
    raise click.BadParameter("give --format parquet|csv or an output file ending .parquet/.csv")


def export(
    config: GenbaConfig, tags: str, start: str | None, end: str | None, fmt: str | None, out: Path
) -> None:
    from genba.historian import TimeRange, export_tables, open_store, write_file
    from genba.tags import TagRegistry

    kind = _format(out, fmt)
    t0 = time.perf_counter()
    try:
        store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    except StoreLockedError:  # a running node holds the file: ask it
        params = {"pattern": tags, "start": start or EPOCH, "end": end, "format": kind}
        with httpx.stream(
            "GET", f"{_node_url(config)}/api/export",
            params={k: v for k, v in params.items() if v is not None}, timeout=None,
        ) as r:  # fmt: skip
            if r.status_code != 200:
                r.read()
                raise click.ClickException(f"the node refused the export: {r.text}") from None
            with out.open("wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
        _say(f"wrote {out} through the running node ({time.perf_counter() - t0:.1f} s)")
        return
    try:
        now = time.time_ns()
        span = TimeRange(
            parse_time(start or EPOCH, now_ns=now), parse_time(end, now_ns=now) if end else now
        )
        registry = TagRegistry(store.load_tags())
        rows = write_file(export_tables(store, registry, tags, span), out, kind)  # type: ignore[arg-type]
    finally:
        store.close()
    _say(f"wrote {rows:,} samples to {out} ({time.perf_counter() - t0:.1f} s)")


def import_file(config: GenbaConfig, path: Path, max_future_s: float) -> dict[str, Any]:
    from genba.historian import read_file

    url = _node_url(config)
    try:
        httpx.get(f"{url}/api/health", timeout=2).raise_for_status()
        running = True
    except httpx.HTTPError:
        running = False
    totals: dict[str, Any] = {"accepted": 0, "rejected": 0, "skipped": 0, "errors": []}
    t0 = time.perf_counter()
    if running:
        with httpx.Client(base_url=url, timeout=120) as http:
            before = _dropped(http)
            for body in read_file(path):
                r = http.post(
                    "/api/ingest", content=body, params={"max_future_s": max_future_s},
                    headers={"content-type": "application/vnd.apache.arrow.stream"},
                )  # fmt: skip
                if r.status_code != 200:
                    raise click.ClickException(f"the node refused the import: {r.text}")
                _add(totals, r.json())
            # what the node's writer found stored already (ingest answers once written)
            totals["skipped"] = max(_dropped(http) - before, 0)
            totals["accepted"] -= totals["skipped"]
        how = "through the running node"
    else:
        _import_into_store(config, path, max_future_s, totals)
        how = "into the store"
    _say(
        f"imported {totals['accepted']:,} samples {how}, skipped {totals['skipped']:,} "
        f"already stored, refused {totals['rejected']:,} ({time.perf_counter() - t0:.1f} s)"
    )
    for e in totals["errors"][:20]:
        print(f"row {e['row']}: {e['tag']}: {e['reason']}", file=sys.stderr)
    return totals


def _dropped(http: httpx.Client) -> int:
    store: dict[str, Any] = http.get("/api/health").json()["store"]
    return int(store["duplicates_dropped"])


def _add(totals: dict[str, Any], part: dict[str, Any]) -> None:
    totals["accepted"] += part["accepted"]
    totals["rejected"] += part["rejected"]
    totals["errors"] += part["errors"][: max(0, 100 - len(totals["errors"]))]


def _import_into_store(
    config: GenbaConfig, path: Path, max_future_s: float, totals: dict[str, Any]
) -> None:
    from genba.deadletter import DeadLetters
    from genba.historian import Record, open_store, read_tables
    from genba.historian._dedup import Redeliveries
    from genba.node import ingest_table
    from genba.tags import TagRegistry

    store = open_store(config.store, data_dir=config.data_dir, read_only=False)
    try:
        registry = TagRegistry(store.load_tags())
        registry.on_new_tags(store.save_tags)
        letters: list[Record] = []
        dead = DeadLetters(lambda ts, r: letters.append(Record("deadletter", ts, r["source"], r)))
        seen = Redeliveries(store)
        for table in read_tables(path):  # no round trip through a body: a stopped node
            batch, result = ingest_table(
                table, registry=registry, now_ns=time.time_ns(), dead_letters=dead,
                max_future_s=max_future_s,
            )  # fmt: skip
            store.append_records(letters)  # the chunk's dead letters, in one transaction
            letters.clear()
            new = seen.filter(batch)
            store.append(new)
            seen.note(new)
            _add(totals, result.as_dict())
            totals["accepted"] -= len(batch) - len(new)
        totals["skipped"] = seen.dropped
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    finally:
        store.close()


def write_tag(config: GenbaConfig, tag: str, value: float) -> dict[str, Any]:
    """``POST /api/tags/{tag}/write`` to the node of ``config``; its answer."""
    url = f"{_node_url(config)}/api/tags/{quote(tag)}/write"
    try:
        r = httpx.post(url, json={"value": value}, timeout=330)
    except httpx.TransportError as e:
        raise click.ClickException(
            f"no node answers at {_node_url(config)} ({e}): writes go through a running node; "
            "start it with `genba up` (or check [node] http)"
        ) from None
    body: dict[str, Any] = r.json()
    if r.status_code != 200:
        raise click.ClickException(body["error"]["message"])
    return body
