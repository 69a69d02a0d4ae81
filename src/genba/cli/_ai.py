"""``genba ai``: anomaly detectors, judged on public benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from genba.cli._format import render
from genba.errors import GenbaError


@click.group("ai")
def ai() -> None:
    """Models that learn each machine's normal operation (docs/ai.md)."""


@ai.group()
def evaluate() -> None:
    """Score a detector on a benchmark by the benchmark's own protocol."""


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: write KEY=VALUE, e.g. variance=0.9")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a word: a string setting


@evaluate.command()
@click.option(
    "--data",
    "data",
    type=click.Path(path_type=Path),
    required=True,
    help="A folder of SKAB CSVs (searched through: valve1/, valve2/, other/, anomaly-free/).",
)
@click.option(
    "--detector",
    default="pca",
    show_default=True,
    help="Detector kind (genba.ai.DETECTORS: mad, pca).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A detector setting over its default, e.g. --set variance=0.9 (repeatable).",
)
@click.option(
    "--files",
    "patterns",
    multiple=True,
    metavar="GLOB",
    help="Only files whose path under --data matches, e.g. 'valve1/1?.csv' (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A per-file table with the pooled figures, or JSON with both.",
)
def skab(data: Path, detector: str, settings: tuple[str, ...], patterns: tuple[str, ...], fmt: str) -> None:  # fmt: skip
    """The Skoltech Anomaly Benchmark: fit on each file's first 400 rows, score the rest;
    outlier F1, false- and missed-alarm rates pooled over every file, and NAB's changepoint
    score (docs/ai.md says exactly how)."""
    from genba.ai import evaluate_skab, make_detector

    params = dict(_setting(s) for s in settings)
    try:
        make_detector(detector, **params)  # a bad kind or setting fails before any file
        report = evaluate_skab(
            data, lambda: make_detector(detector, **params), patterns=list(patterns) or None
        )
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=1))
        return
    rows = [
        [f.name, f.rows, f.tp, f.fp, f.fn, f.tn,
         None if f.f1 is None else round(f.f1, 3), _pct(f.far), _pct(f.mar)]
        for f in [*report.files, report.pooled]
    ]  # fmt: skip
    cols = ["file", "rows", "tp", "fp", "fn", "tn", "f1", "far_%", "mar_%"]
    click.echo(render(cols, rows, "table"))
    unlabelled = [f.name for f in report.files if not f.labelled]
    if unlabelled:
        click.echo(f"not pooled (no labels; every alarm a false one): {', '.join(unlabelled)}")
    nab = ", ".join(f"{k} {v}" for k, v in report.nab.items())
    click.echo(f"NAB (changepoints): {nab}")
    click.echo(f"detector {report.detector} {json.dumps(report.params)}")
