"""``genba kpi`` (OEE, losses, reliability, cost as a table, CSV or JSON) and ``genba report``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from genba.cli._format import render
from genba.cli._options import config_option, format_option, load_or_exit
from genba.cli._source import open_kpi
from genba.errors import GenbaError
from genba.kpi import BY, REPORT_PERIODS, report_span
from genba.timeparse import format_time, parse_time


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def _num(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _table(kind: str, d: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows = d["rows"]
    if kind == "oee":
        cols = ["period", "entity", "availability_%", "performance_%", "quality_%", "oee_%",
                "teep_%", "planned_h", "good", "reject"]  # fmt: skip
        out = [
            [r["period"], r["entity"], _pct(r["availability"]), _pct(r["performance"]),
             _pct(r["quality"]), _pct(r["oee"]), _pct(r["teep"]),
             _num(r["waterfall_min"]["planned"] / 60), int(r["counts"]["good"]),
             int(r["counts"]["reject"])]
            for r in rows
        ]  # fmt: skip
    elif kind == "losses":
        names = list(rows[0]["losses_min"]) if rows else []
        cols = ["period", "entity", *[f"{n}_min" for n in names]]
        out = [[r["period"], r["entity"], *(_num(r["losses_min"][n]) for n in names)] for r in rows]
    elif kind == "reliability":
        cols = ["period", "entity", "failures", "mtbf_h", "mttr_min", "throughput_per_h",
                "first_pass_yield_%", "count", "target"]  # fmt: skip
        out = [
            [r["period"], r["entity"], r["failures"], _num(r["mtbf_h"]), _num(r["mttr_min"]),
             _num(r["throughput_per_h"], 1), _pct(r["first_pass_yield"]), int(r["count"]),
             _num(r["target"], 0)]
            for r in rows
        ]  # fmt: skip
    else:
        cols = ["period", "entity", "total_cost", "good_units", "cost_per_good_unit", "revenue",
                "margin", "energy_kwh", "wip_avg_units"]  # fmt: skip
        out = [
            [r["period"], r["entity"], _num(r["total_cost"]), int(r["good_units"]),
             _num(r["cost_per_good_unit"], 4), _num(r["revenue"]), _num(r["margin"]),
             _num(r["energy_kwh"], 1), _num(r["wip_avg_units"], 1)]
            for r in rows
        ]  # fmt: skip
    return cols, out


def _say_doubts(d: dict[str, Any]) -> None:
    """Warnings and machines left out, on stderr: never shown silently as figures."""
    for w in d.get("warnings", []):
        click.echo(f"genba: warning: {w['message']}", err=True)
    for x in d.get("not_counted", []):
        click.echo(f"genba: {x['machine']} not counted: {x['reason']}", err=True)


def _kpi_command(kind: str, help_text: str) -> click.Command:
    @click.command(kind, help=help_text + " Table and CSV show the main figures; JSON all.")
    @config_option
    @click.option(
        "--asset", "-a", default="", help="Site, area, line or machine path (default all)."
    )
    @click.option("--start", "-s", default=None, help="ISO 8601, epoch ms or -8h (default -24h).")
    @click.option("--end", "-e", default=None, help="Like --start (default now).")
    @click.option(
        "--by", type=click.Choice(BY), default=None, help="One row per shift, day or hour."
    )
    @format_option
    def command(
        config_path: Path, asset: str, start: str | None, end: str | None, by: str | None, fmt: str
    ) -> None:
        config = load_or_exit(config_path)
        try:
            with open_kpi(config) as src:
                d = src.kpi(kind, asset, start, end, by)
        except GenbaError as e:
            raise click.ClickException(str(e)) from None
        if fmt == "json":
            click.echo(json.dumps(d, indent=1))
            return
        _say_doubts(d)
        cols, rows = _table(kind, d)
        click.echo(render(cols, rows, fmt))

    return command


@click.group("kpi")
def kpi() -> None:
    """Production KPIs from the historian (docs/kpi.md): works with the node stopped or
    running."""


kpi.add_command(_kpi_command("oee", "OEE, availability, performance, quality and TEEP."))
kpi.add_command(_kpi_command("losses", "The six big losses in minutes (JSON: reason Pareto)."))
kpi.add_command(_kpi_command("reliability", "MTBF, MTTR, throughput, first pass yield, target."))
kpi.add_command(_kpi_command("cost", "Cost per good unit, margin, energy, WIP, per line."))


@click.command("report")
@config_option
@click.option("--asset", "-a", default="", help="Site, area or line path (default all).")
@click.option("--period", type=click.Choice(REPORT_PERIODS), default="week", show_default=True,
              help="A shift of the calendar, a local day, an ISO week (from Monday) or a "
                   "calendar month, in the line's time zone.")  # fmt: skip
@click.option("--at", default=None,
              help="Report the period holding this time (ISO 8601, epoch ms, -2d). Default: "
                   "the last complete period.")  # fmt: skip
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("genba-report.html"), show_default=True, help="HTML file to write.")  # fmt: skip
def report(config_path: Path, asset: str, period: str, at: str | None, output: Path) -> None:
    """Write a self-contained HTML report: OEE waterfall, loss Pareto, KPIs by day or shift,
    reliability and cost tables. It opens in any browser with no network."""
    from genba.kpi._report import render_report

    config = load_or_exit(config_path)
    try:
        lines = [m.line for m in config.machine if not asset or m.path.startswith(asset.strip("/"))]
        cal = config.calendar_of(lines[0] if lines else "")
        now = time.time_ns()
        span = report_span(cal, period, parse_time(at, now_ns=now) if at else now, holding=bool(at))
        start, end = format_time(span.start_ns), format_time(span.end_ns)
        with open_kpi(config) as src:
            by = "shift" if period in ("shift", "day") else "day"
            data = {
                kind: src.kpi(kind, asset, start, end, None)
                for kind in ("oee", "losses", "reliability", "cost")
            }
            data["by"] = src.kpi("oee", asset, start, end, by)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    output.write_text(
        render_report(config.node.name, asset or "all", period, data), encoding="utf-8"
    )
    click.echo(f"genba: report written to {output}", err=True)
