"""``genba ai``: anomaly detectors, judged on public benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from genba.cli._format import FORMATS, render
from genba.cli._options import config_option, load_or_exit, store_or_exit
from genba.errors import GenbaError

if TYPE_CHECKING:
    from genba.config import GenbaConfig, RulSettings
from genba.timeparse import format_time, parse_time


@click.group("ai")
def ai() -> None:
    """Models that learn each machine's normal operation (docs/ai.md)."""


@ai.group()
def evaluate() -> None:
    """Score a detector on a benchmark by the benchmark's own protocol."""


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def _threshold(metrics: dict[str, Any]) -> float | None:
    """A detector's threshold (a RUL model has none)."""
    t = metrics.get("threshold")
    return None if t is None else round(float(t), 4)


def _seeds(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give whole numbers, e.g. 11,12,13", param_hint="--seeds") from None  # fmt: skip


def _rul_settings(config: GenbaConfig, name: str | None) -> RulSettings:
    """The config's ``[[rul]]`` named ``name``, or one with every default."""
    from genba.config import RulSettings

    if name is None:
        return RulSettings(name="rul")
    found = [m for m in config.rul if m.name == name]
    if not found:
        known = ", ".join(m.name for m in config.rul) or "(none)"
        raise click.ClickException(f"no [[rul]] named {name!r}; RUL models: {known}")
    return found[0]


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
    default="knn",
    show_default=True,
    help="Detector kind (genba.ai.DETECTORS: ae, iforest, knn, mad, pca); knn is SKAB's rule.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A detector setting over SKAB's rule (min_roughness=0.3, margin=1.5, q=1.0) and the "
    "detector's "
    "defaults, e.g. --set variance=0.9 (repeatable).",
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
    from genba.ai._skab import RULE

    params = RULE | dict(_setting(s) for s in settings)
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


@evaluate.command()
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A node config with a simulator [[connector]] and its [[machine]]s (default: the "
    "example config, the demo line).",
)
@click.option("--model", "name", default=None, help="The config's [[model]] of this name (default: one with every default).")  # fmt: skip
@click.option("--detector", default=None, help="Detector kind over the model's (ae, iforest, knn, mad, pca).")  # fmt: skip
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A detector setting over the plant rule, e.g. --set window=120 (repeatable).")  # fmt: skip
@click.option("--seeds", default="11,12,13", show_default=True, help="Simulator seeds, comma-separated: a plant each.")  # fmt: skip
@click.option("--days", default=30.0, show_default=True, help="Simulated days per seed.")
@click.option("--train-days", default=7.0, show_default=True, help="Train on the first days; score the rest.")  # fmt: skip
@click.option("--lead-h", default=1.0, show_default=True, help="Running hours an alarm must come before a wear-out failure to catch it.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)  # fmt: skip
def sim(config_path: Path | None, name: str | None, detector: str | None, settings: tuple[str, ...], seeds: str, days: float, train_days: float, lead_h: float, fmt: str) -> None:  # fmt: skip
    """The simulator's truth: a simulated plant per seed through the node's path (stored,
    trained on the first days, scored as the watch scores); the share of wear-out failures
    alarmed at least --lead-h running hours ahead, the median lead, and false alarms per
    machine-week (docs/ai.md says exactly how). Minutes per seed for a month."""
    from genba.ai import DETECTORS
    from genba.ai._simeval import evaluate_sim
    from genba.config import ModelSettings, example_config, parse_config

    config = load_or_exit(config_path) if config_path else parse_config(example_config())
    seed_list = _seeds(seeds)
    model = ModelSettings(name="sim")
    if name is not None:
        found = [m for m in config.model if m.name == name]
        if not found:
            known = ", ".join(m.name for m in config.model) or "(none)"
            raise click.ClickException(f"no [[model]] named {name!r}; models: {known}")
        model = found[0]
    kind = detector or model.detector
    if kind not in DETECTORS:
        raise click.ClickException(f"unknown detector {kind!r}; known: {', '.join(sorted(DETECTORS))}")  # fmt: skip
    model = model.model_copy(update={"detector": kind, "settings": model.settings | dict(_setting(s) for s in settings)})  # fmt: skip
    try:
        report = evaluate_sim(config, model, DETECTORS[kind], seeds=seed_list, days=days, train_days=train_days, lead_h=lead_h)  # fmt: skip
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=1))
        return
    cols = ["seed", "machines", "wear_outs", "caught_%", "median_lead_h", "false_alarms", "machine_weeks", "fa_per_machine_week", "sudden"]  # fmt: skip

    def row(seed: Any, p: dict[str, Any]) -> list[Any]:
        return [seed, p["machines"], p["wear_outs"], _pct(p["caught_share"]),
                None if p["median_lead_h"] is None else round(p["median_lead_h"], 2),
                p["false_alarms"], round(p["machine_weeks"], 2),
                None if p["false_alarms_per_machine_week"] is None else round(p["false_alarms_per_machine_week"], 2),
                p["sudden_failures"]]  # fmt: skip

    rows = [row(p["seed"], p) for p in report.per_seed()] + [row("pooled", report.pooled())]
    click.echo(render(cols, rows, "table"))
    click.echo(f"detector {kind} {json.dumps(model.settings)} over the plant rule; scenario {report.scenario}, trained on {train_days} of {days} days")  # fmt: skip


@evaluate.command()
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A node config with the scenario's [[machine]]s (default: the example config, the demo line's machines, which the wear scenario shares).")  # fmt: skip
@click.option("--model", "name", default=None, help="The config's [[rul]] of this name (default: one with every default).")  # fmt: skip
@click.option("--scenario", default="wear", show_default=True, help="Simulator scenario: a built-in name or a scenario file.")  # fmt: skip
@click.option("--seeds", default="11,12,13", show_default=True, help="Simulator seeds, comma-separated: a plant each.")  # fmt: skip
@click.option("--days", default=90.0, show_default=True, help="Simulated days per seed (a quarter).")  # fmt: skip
@click.option("--train-days", default=45.0, show_default=True, help="Train on the first days; score the rest.")  # fmt: skip
@click.option("--window-h", default=48.0, show_default=True, help="RUL error over this many running hours before each wear-out failure.")  # fmt: skip
@click.option("--lead-h", default=1.0, show_default=True, help="A warning must be active at least this many running hours before the failure.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)  # fmt: skip
def rul(config_path: Path | None, name: str | None, scenario: str, seeds: str, days: float, train_days: float, window_h: float, lead_h: float, fmt: str) -> None:  # fmt: skip
    """Remaining useful life against the simulator's truth: a simulated quarter per seed of
    the wear-heavy plant, stored as a node stores it; each machine's [[rul]] model trained on
    the first days from the historian alone, then every later row predicted. RUL error over
    the last --window-h running hours before each wear-out failure, the coverage of its 80 %
    interval, and precision/recall of the "fails within horizon_h" warnings (docs/ai.md says
    exactly how). Minutes per seed; needs the ml extra."""
    from genba.ai._rulsim import evaluate_rul
    from genba.config import example_config, parse_config

    config = load_or_exit(config_path) if config_path else parse_config(example_config())
    seed_list = _seeds(seeds)
    model = _rul_settings(config, name)
    try:
        report = evaluate_rul(config, model, scenario=scenario, seeds=seed_list, days=days, train_days=train_days, window_h=window_h, lead_h=lead_h)  # fmt: skip
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=1))
        return

    def r(x: float | None, d: int = 2) -> float | None:
        return None if x is None else round(x, d)

    cols = ["seed", "machines", "trained", "wear_outs", "mae_h", "rmse_h", "coverage_%", "warnings", "precision_%", "judged", "recall_%", "sudden"]  # fmt: skip
    rows = [
        [p.get("seed", "pooled"), p["machines"], p["trained"], p["wear_outs"],
         r(p["mae_h"]), r(p["rmse_h"]), _pct(p["coverage"]), p["warnings"], _pct(p["precision"]),
         p["judged"], _pct(p["recall"]), p["sudden_failures"]]
        for p in [*report.per_seed(), report.pooled()]
    ]  # fmt: skip
    click.echo(render(cols, rows, "table"))
    for m in report.machines:
        if m.error:
            click.echo(f"seed {m.seed} {m.machine} not trained: {m.error}")
    click.echo(f"scenario {scenario}, trained on {train_days} of {days} days; horizon {model.horizon_h} running h, warning at p > {model.alarm_probability}")  # fmt: skip


@evaluate.command()
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A node config with the scenario's [[machine]]s (default: the example config).")  # fmt: skip
@click.option("--model", "name", default=None, help="The config's [[rul]] of this name (default: one with every default).")  # fmt: skip
@click.option("--scenario", default="wear", show_default=True, help="Simulator scenario: a built-in name or a scenario file.")  # fmt: skip
@click.option("--seed", default=11, show_default=True, help="Simulator seed.")
@click.option("--steps", default=12, show_default=True, help="How many times the models are retrained.")  # fmt: skip
@click.option("--step-days", default=7.0, show_default=True, help="Days between retrainings (and scored after each).")  # fmt: skip
@click.option("--window-h", default=48.0, show_default=True, help="RUL error over this many running hours before each wear-out failure.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)  # fmt: skip
def curve(config_path: Path | None, name: str | None, scenario: str, seed: int, steps: int, step_days: float, window_h: float, fmt: str) -> None:  # fmt: skip
    """The learning curve: a simulated plant retrains its [[rul]] models every --step-days
    as the node does (champion and challenger), and the version in service after each
    retraining is scored on the following days, which it never saw (docs/ai.md)."""
    from genba.ai._curve import learning_curve
    from genba.config import example_config, parse_config

    config = load_or_exit(config_path) if config_path else parse_config(example_config())
    model = _rul_settings(config, name)
    try:
        c = learning_curve(config, model, scenario=scenario, seed=seed, steps=steps, step_days=step_days, window_h=window_h)  # fmt: skip
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(c.to_json(), indent=1))
        return

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    rows = [[s.day, s.trained, s.promoted, s.in_service, len(s.errors_h), r(s.mae_h), len(s.test_errors_h), r(s.test_mae_h)] for s in c.steps]  # fmt: skip
    click.echo(render(["after_day", "trained", "promoted", "in_service", "rows_next", "mae_next_h", "rows_test", "mae_test_h"], rows, "table"))  # fmt: skip
    click.echo(f"scenario {scenario}, seed {seed}; RUL error of the versions in service over the next {step_days:g} days and over the fixed test span after the last step ({2 * step_days:g} days), last {window_h:g} running hours before each wear-out")  # fmt: skip


@evaluate.command()
@click.option("--scenario", default="demo", show_default=True, help="Simulator scenario: a built-in name or a scenario file.")  # fmt: skip
@click.option("--seeds", default="11,12,13", show_default=True, help="Simulator seeds, comma-separated: a plant each.")  # fmt: skip
@click.option("--days", default=14.0, show_default=True, help="Simulated days per seed.")
@click.option("--train-share", default=0.7, show_default=True, help="Share of the days trained on (setpoints in the visited box only).")  # fmt: skip
@click.option("--change-h", default=2.0, show_default=True, help="Hours between the operator's setpoint changes.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)  # fmt: skip
def quality(scenario: str, seeds: str, days: float, train_share: float, change_h: float, fmt: str) -> None:  # fmt: skip
    """The reject-rate surrogate against the simulator's exact reject probability: trained
    on windows whose setpoints stayed in a visited box, judged on later windows in that box and
    outside it — error, calibration, and the coverage of its 80 % intervals (docs/ai.md).
    Minutes per seed; needs the ml extra."""
    from genba.ai._qualitysim import evaluate_quality

    seed_list = _seeds(seeds)
    try:
        report = evaluate_quality(scenario=scenario, seeds=seed_list, days=days, train_share=train_share, change_h=change_h)  # fmt: skip
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    out = report.to_json()
    if fmt == "json":
        click.echo(json.dumps(out, indent=1))
        return

    def r(x: float | None, d: int = 2) -> float | None:
        return None if x is None else round(x, d)

    rows = [[k, g["windows"], r(g["mae_pp"]), r(g["mean_predicted_pct"]), r(g["mean_observed_pct"]), _pct(g["coverage"])] for k, g in out["groups"].items()]  # fmt: skip
    click.echo(render(["setpoints", "windows", "mae_pp", "predicted_%", "observed_%", "coverage_80_%"], rows, "table"))  # fmt: skip
    click.echo(f"scenario {scenario}, seeds {seeds}; trained on the first {train_share:.0%} of {days:g} days; windows dropped for counter resets: {report.dropped_resets}")  # fmt: skip


@evaluate.command()
@click.option("--data", "data", type=click.Path(path_type=Path), required=True, help="A folder of C-MAPSS files: train_FDxxx.txt(.gz), and test_FDxxx / RUL_FDxxx when there.")  # fmt: skip
@click.option("--subset", "subsets", multiple=True, type=click.Choice(["FD001", "FD002", "FD003", "FD004"]), help="Only this subset (repeatable; default: every one found).")  # fmt: skip
@click.option("--tune/--no-tune", default=True, show_default=True, help="Choose the regressor's settings by cross-validation over the training units (nested in the validation); --no-tune: the base settings.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)  # fmt: skip
def cmapss(data: Path, subsets: tuple[str, ...], tune: bool, fmt: str) -> None:
    """Remaining useful life on NASA's C-MAPSS: trained on train_FDxxx (RUL capped at 125);
    each test unit predicted at its last cycle when test_FDxxx and RUL_FDxxx are in --data
    (RMSE against the capped and the uncapped truth, NASA's score), cross-validation by unit
    otherwise (docs/ai.md); the settings chosen by cross-validation over the training units.
    Needs the ml extra (scikit-learn)."""
    from genba.ai._cmapss import evaluate_cmapss, to_json

    try:
        results = evaluate_cmapss(data, list(subsets) or None, tune)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(to_json(results), indent=1))
        return
    cols = ["subset", "protocol", "units", "predictions", "rmse", "rmse_uncapped", "nasa_score"]
    rows = [[r.subset, r.protocol, r.units, r.predictions, round(r.rmse, 2), round(r.rmse_uncapped, 2), round(r.nasa, 1)] for r in results]  # fmt: skip
    click.echo(render(cols, rows, "table"))
    for r in results:
        picks = sorted({json.dumps(c, sort_keys=True) for c in r.chosen})
        click.echo(f"{r.subset}: settings chosen over the base ones: {', '.join(picks) or 'none (--no-tune)'}")  # fmt: skip


@ai.command()
@config_option
@click.option("--model", "name", default=None, help="Only the [[model]] of this name.")
@click.option(
    "--end",
    default=None,
    help="Train on the data before this time (ISO or relative, e.g. -1d); default: the "
    "newest sample in the store.",
)
def train(config_path: Path, name: str | None, end: str | None) -> None:
    """Train each [[model]] for every machine it matches, from the historian, and store each
    as the next version in the model registry (stop the node first on DuckDB: it holds the
    file)."""
    from genba.ai import train_models
    from genba.clock import RealClock
    from genba.tags import TagRegistry

    config = load_or_exit(config_path)
    clock = RealClock()
    hint = " Stop the node to train from its store."
    with store_or_exit(config, read_only=False, hint=hint) as store:
        try:
            if end is not None:
                end_ns = parse_time(end, now_ns=clock.now_ns())
            else:
                last = store.last()
                end_ns = int(last.ts_ns.max()) + 1 if len(last) else clock.now_ns()
            registry = TagRegistry(store.load_tags())
            results = train_models(config, store, registry, clock, name=name, end_ns=end_ns)
        except GenbaError as e:
            raise click.ClickException(str(e)) from None
    rows: list[list[Any]] = []
    for r in results:
        v = r.version
        if v is None:
            rows.append([r.model, r.machine, None, None, None, None, None, f"not trained: {r.error}"])  # fmt: skip
        else:
            used = [s for s, u in zip(v.signals, v.used, strict=True) if u]
            rows.append([r.model, r.machine, v.version, v.rows, _threshold(v.metrics),
                         ", ".join(used), v.sha256[:12], r.decision.reason if r.decision else ""])  # fmt: skip
    cols = ["model", "machine", "version", "rows", "threshold", "signals", "sha256", "decision"]
    click.echo(render(cols, rows, "table"))
    if any(r.version is None for r in results):
        raise SystemExit(1)


@ai.command()
@config_option
@click.option("--model", "name", default=None, help="Only this model's decisions.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def decisions(config_path: Path, name: str | None, fmt: str) -> None:
    """Champion/challenger decisions: whether each new version replaced the one in service,
    on which unseen data, with the paired bootstrap's evidence (docs/ai.md)."""
    from dataclasses import asdict

    from genba.ai import decisions as all_decisions

    config = load_or_exit(config_path)
    with store_or_exit(config, read_only=True) as store:
        found = all_decisions(store, name)
    if fmt == "json":
        click.echo(json.dumps([asdict(d) for d in found], indent=1))
        return

    def r4(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    rows = [
        [d.name, d.machine, d.champion, d.challenger, "yes" if d.promoted else "no", d.metric,
         r4(d.champion_loss), r4(d.challenger_loss), r4(d.ci_low), r4(d.ci_high), d.reason]
        for d in found
    ]  # fmt: skip
    cols = ["model", "machine", "champion", "challenger", "promoted", "metric", "champion_loss", "challenger_loss", "ci_low", "ci_high", "reason"]  # fmt: skip
    click.echo(render(cols, rows, fmt))


@ai.command("pin")
@config_option
@click.option("--model", "name", required=True, help="The model's name.")
@click.option("--machine", required=True, help="The machine's path.")
@click.option("--version", "version", type=int, default=None, help="The version to put in service (leave out with --unpin).")  # fmt: skip
@click.option("--unpin", is_flag=True, help="Remove the pin: the decisions rule again.")
@click.option("--rollback", "back", is_flag=True, help="Pin the version in service before the current one.")  # fmt: skip
@click.option("--note", default="", help="Why, for the record.")
def pin_cmd(config_path: Path, name: str, machine: str, version: int | None, unpin: bool, back: bool, note: str) -> None:  # fmt: skip
    """Put a version in service over any champion/challenger decision, unpin, or roll back to
    the version served before (stop the node first on DuckDB, or use POST
    /api/models/{name}/pin on the running node)."""
    from genba.ai import in_service, pin, rollback
    from genba.clock import RealClock

    if sum([version is not None, unpin, back]) != 1:
        raise click.UsageError("give exactly one of --version N, --unpin, --rollback")
    config = load_or_exit(config_path)
    now = RealClock().now_ns()
    with store_or_exit(config, read_only=False, hint=" Stop the node, or pin through its API.") as store:  # fmt: skip
        try:
            if back:
                rollback(store, name, machine, now)
            else:
                pin(store, name, machine, None if unpin else version, now, note)
        except GenbaError as e:
            raise click.ClickException(str(e)) from None
        v = in_service(store, name, machine)
    click.echo(f"{name} on {machine}: version {None if v is None else v.version} in service")


@ai.command()
@config_option
@click.option("--model", "name", default=None, help="Only the versions of this model.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def models(config_path: Path, name: str | None, fmt: str) -> None:
    """The model registry: every trained version, whether it is the one in service, its
    training range, rows and metrics."""
    from genba.ai import in_service, versions

    config = load_or_exit(config_path)
    with store_or_exit(config, read_only=True) as store:
        found = versions(store, name)
        serving = {}
        for key in {(v.name, v.machine) for v in found}:
            s = in_service(store, *key)
            serving[key] = None if s is None else s.version
    if fmt == "json":
        click.echo(json.dumps([v.summary() | {"in_service": serving[(v.name, v.machine)] == v.version} for v in found], indent=1))  # fmt: skip
        return
    rows = [
        [v.name, v.machine, v.version, "yes" if serving[(v.name, v.machine)] == v.version else "",
         v.detector, format_time(v.trained_from_ns), format_time(v.trained_to_ns), v.rows,
         _threshold(v.metrics), v.sha256[:12]]
        for v in found
    ]  # fmt: skip
    cols = ["model", "machine", "version", "in_service", "detector", "from", "to", "rows", "threshold", "sha256"]  # fmt: skip
    click.echo(render(cols, rows, fmt))
