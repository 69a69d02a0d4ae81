"""``genba``: set up, run and query a node. ``genba COMMAND --help`` for each command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from genba._version import __version__
from genba.cli._format import render
from genba.cli._options import config_option, format_option, load_or_exit, store_or_exit
from genba.cli._source import open_source
from genba.config import GenbaConfig, example_config
from genba.errors import GenbaError
from genba.timeparse import format_time


def _say(msg: str) -> None:
    click.echo(f"genba: {msg}", err=True)


@contextlib.contextmanager
def _step(msg: str) -> Iterator[None]:
    """Show a long step on stderr: what it does, then how long it took."""
    click.echo(f"genba: {msg}…", err=True, nl=False)
    t0 = time.perf_counter()
    try:
        yield
    except BaseException:
        click.echo(" failed", err=True)
        raise
    click.echo(f" done ({time.perf_counter() - t0:.2f} s)", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="genba")
def cli() -> None:
    """genba: connect machines, keep their history, see the shop floor live.

    Start with `genba init` and `genba up`, then open http://127.0.0.1:8000.
    Docs: docs/ in the source tree.
    """


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing genba.toml.")
def init(directory: Path, force: bool) -> None:
    """Write a documented example genba.toml into DIRECTORY (default: here).

    The example runs a simulated bottling line of three machines.
    """
    target = directory / "genba.toml"
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists already; pass --force to overwrite it.")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(example_config(), encoding="utf-8")
    _say(f"wrote {target}")
    _say(f"next: genba up --config {target}")


@cli.command()
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log more (DEBUG).")
def up(config_path: Path, verbose: bool) -> None:
    """Run a node until Ctrl-C (SIGINT) or SIGTERM, then flush the historian and stop.

    Serves the API and dashboard at the config's [node] http address.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = load_or_exit(config_path)
    try:
        asyncio.run(_up(config))
    except GenbaError as e:
        raise click.ClickException(str(e)) from None


async def _up(config: GenbaConfig) -> None:
    from genba.api import bind_socket, serve
    from genba.node import Node

    sock = bind_socket(config.node.host, config.node.port)
    with _step(f"opening the {config.store.kind} historian in {config.data_dir}"):
        node = Node(config)
    _say(f"{len(node.registry)} tags, {len(node.connectors)} connector(s)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def ready(url: str) -> None:
        _say(f"node {node.name!r} is up: dashboard {url}/ , API {url}/docs . Ctrl-C stops it.")

    t0 = time.perf_counter()
    await serve(node, stop=stop, on_ready=ready, sock=sock)
    stats = node.health()
    _say(
        f"stopped after {time.perf_counter() - t0:.1f} s: received "
        f"{stats['bus']['published_samples']} samples, stored {stats['store']['stored_samples']}."
    )


@cli.command()
@config_option
@click.option("--pattern", "-p", default="#", show_default=True, help="MQTT-style tag filter.")
@format_option
def tags(config_path: Path, pattern: str, fmt: str) -> None:
    """List tags with unit and last value."""
    config = load_or_exit(config_path)
    try:
        with open_source(config) as src:
            rows = src.tags(pattern)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    table = [
        [
            t["path"],
            t["unit"],
            t["last"]["value"] if t["last"] else None,
            format_time(t["last"]["ts_ms"] * 1_000_000) if t["last"] else None,
            bool(t["last"] and t["last"].get("stale")),  # a stale mark: its source is gone
        ]
        for t in rows
    ]
    click.echo(render(["path", "unit", "value", "time", "stale"], table, fmt))


@cli.command()
@click.argument("tag")
@config_option
@click.option("--start", "-s", default=None, help="ISO 8601, epoch ms, now, or -15m (default -1h).")
@click.option("--end", "-e", default=None, help="Like --start (default now).")
@click.option("--every", default=None, help="Bucket size such as 10s, 1m, 1h: aggregates.")
@click.option(
    "--agg",
    default="avg",
    show_default=True,
    help="With --every: avg,min,max,count,first,last,sum or twa (time-weighted), comma-separated.",
)
@click.option("--limit", type=int, default=None, help="Most raw samples (default 10000).")
@format_option
def query(
    tag: str,
    config_path: Path,
    start: str | None,
    end: str | None,
    every: str | None,
    agg: str,
    limit: int | None,
    fmt: str,
) -> None:
    """Print the history of TAG (its full path): raw samples, or aggregates with --every."""
    config = load_or_exit(config_path)
    try:
        with _step(f"querying {tag}"), open_source(config) as src:
            d: dict[str, Any] = src.samples(
                tag, start=start, end=end, every=every, agg=agg, limit=limit
            )
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    cols = d["aggs"] if every else ["value", "quality"]
    rows = [
        [format_time(ts * 1_000_000), *(d[c][i] for c in cols)] for i, ts in enumerate(d["ts_ms"])
    ]
    click.echo(render(["time", *cols], rows, fmt))
    if d.get("truncated"):
        _say(f"showing the first {len(rows)} samples; raise --limit or use --every for more.")


@cli.group()
def db() -> None:
    """The historian's database: schema upgrades."""


@db.command()
@config_option
def upgrade(config_path: Path) -> None:
    """Apply the schema migrations the store lacks (a writable node also does this on start).

    Stop the node first. PostgreSQL: numbered migrations, in order, in one transaction. DuckDB
    creates and keeps its schema itself when the node opens the file.
    """
    config = load_or_exit(config_path)
    with store_or_exit(config, read_only=False) as store:
        run = getattr(store, "upgrade", None)
        if run is None:
            _say(f"{config.store.kind}: the schema is kept current on open; nothing to do")
            return
        applied = run()  # opening applied them already; this reports what is current
        version = store.schema_version()  # type: ignore[attr-defined]
        for number, what in getattr(store, "applied_on_open", []) + applied:
            _say(f"applied migration {number}: {what}" if number else f"applied: {what}")
        _say(f"{config.store.kind}: schema version {version}, current")


@cli.command("export")
@config_option
@click.option("--tags", "-t", default="#", show_default=True, help="MQTT-style tag filter.")
@click.option("--start", "-s", default=None, help="ISO 8601, epoch ms or -7d (default: all).")
@click.option("--end", "-e", default=None, help="Like --start (default now).")
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv"]), help="Default: from --output."
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="File to write (.parquet or .csv).",
)  # fmt: skip
def export_cmd(
    config_path: Path, tags: str, start: str | None, end: str | None, fmt: str | None, output: Path
) -> None:
    """Write the history of the matching tags to a Parquet or CSV file.

    Columns: tag, timestamp (UTC, to the nanosecond), value, quality; `genba import` reads it
    back. Works with the node stopped or running.
    """
    from genba.cli._transfer import export

    try:
        export(load_or_exit(config_path), tags, start, end, fmt, output)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--max-future-s", type=float, default=300.0, show_default=True,
    help="Refuse rows stamped further ahead than this.",
)  # fmt: skip
def import_cmd(file: Path, config_path: Path, max_future_s: float) -> None:
    """Back-fill history from a Parquet or CSV file (columns tag, timestamp, value[, quality]).

    Rows are validated like POST /api/ingest; refused rows are listed with their reason. With
    the node running, the import goes through its ingest, between live data.
    """
    from genba.cli._transfer import import_file

    try:
        import_file(load_or_exit(config_path), file, max_future_s)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None


@cli.command("write")
@click.argument("tag")
@click.argument("value", type=float)
@config_option
def write_cmd(tag: str, value: float, config_path: Path) -> None:
    """Write VALUE to the device behind TAG (its full path) through the running node, and
    read it back.

    Only tags that `[[connector]] writable` names can be written. Prints what the device holds
    afterwards; exits 1 when that is not VALUE (the device kept another value) or the write
    failed.
    """
    from genba.cli._transfer import write_tag

    result = write_tag(load_or_exit(config_path), tag, value)
    held = "confirmed" if result["confirmed"] else f"NOT confirmed: asked for {value:g}"
    click.echo(f"{result['path']} = {result['value']:g} ({held}; via {result['connector']})")
    if not result["confirmed"]:
        raise SystemExit(1)


from genba.cli._ai import ai  # noqa: E402 - registered after the group exists
from genba.cli._kpi import kpi, report  # noqa: E402
from genba.cli._simulate import simulate  # noqa: E402

cli.add_command(simulate)
cli.add_command(kpi)
cli.add_command(report)
cli.add_command(ai)


def main() -> None:
    cli(prog_name="genba")
