"""``genba simulate``: the plant simulator on its own, as network devices or in batch."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from genba.errors import GenbaError
from genba.timeparse import parse_time

if TYPE_CHECKING:
    from genba.sim import Scenario, Simulator
    from genba.sim.outputs import Output


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    if not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT such as 127.0.0.1:1883, got {value!r}")
    return host or "127.0.0.1", int(port)


@click.command()
@click.option(
    "--scenario",
    "-s",
    default="demo",
    show_default=True,
    help="Built-in scenario (demo, large) or a scenario TOML file.",
)
@click.option("--mqtt", metavar="HOST:PORT", help="Publish JSON on unified-namespace topics.")
@click.option(
    "--mqtt-qos",
    type=click.IntRange(0, 1),
    default=0,
    show_default=True,
    help="QoS of --mqtt messages. With 1, what the broker has not acknowledged waits in "
    "memory and is sent when it is back.",
)
@click.option("--sparkplug", metavar="HOST:PORT", help="Run a Sparkplug B edge node per line.")
@click.option("--opcua", type=int, metavar="PORT", help="Serve an OPC UA address space.")
@click.option("--modbus", type=int, metavar="PORT", help="Serve Modbus TCP holding registers.")
@click.option(
    "--bind", default="127.0.0.1", show_default=True, help="Address OPC UA and Modbus listen on."
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (with outputs).",
)
@click.option(
    "--report-by-exception",
    "rbe",
    type=float,
    metavar="DEADBAND_%",
    help="Send a value only when it changes, as real devices and gateways do: states, codes "
    "and counters on every change, analog tags when they move more than this percent of the "
    "last value sent (e.g. 0.5).",
)
@click.option("--hours", type=float, help="Stop after this many simulated hours.")
@click.option(
    "--truth",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the ground truth of the run here (timeline.parquet, failures.csv, summary.json).",
)
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option(
    "--start",
    help="UTC start of the simulated time, ISO 8601 (default: the scenario's, else this hour). "
    "Same seed and start, same data.",
)
def simulate(
    scenario: str, mqtt: str | None, mqtt_qos: int, sparkplug: str | None, opcua: int | None, modbus: int | None,
    bind: str, speed: float, rbe: float | None, hours: float | None, truth: Path | None, seed: int | None,
    start: str | None,
) -> None:  # fmt: skip
    """Run the plant simulator on its own.

    With --mqtt, --sparkplug, --opcua or --modbus it serves the plant as real devices at
    --speed × real time until Ctrl-C (or --hours). Without outputs it runs --hours as fast as
    the CPU allows and writes the ground truth with --truth. Setpoints (temperature_sp,
    speed_sp) are writable through every output. Details: docs/simulator.md.
    """
    from genba.sim import Simulator
    from genba.sim import truth as ground_truth

    sc = _scenario(scenario, seed)
    t0_ns = _start(start)
    # Serving for days keeps a day of history, unless the whole run's truth is wanted.
    sim = Simulator(sc, t0_ns=t0_ns, retain_s=None if truth else 86_400.0)
    serving = any(x is not None for x in (mqtt, sparkplug, opcua, modbus))
    for address in (mqtt, sparkplug):
        if address:
            _host_port(address, 1883)  # check HOST:PORT before anything starts
    if not serving and hours is None:
        raise click.UsageError("give an output (--mqtt, --sparkplug, --opcua, --modbus) or --hours")
    until = None if hours is None else hours * 3600.0
    n_tags = len(sim.tag_paths)
    click.echo(
        f"genba: {sc.plant.name}: {len(sim.plant.machines)} machines, {n_tags} tags", err=True
    )
    if serving:

        async def serve() -> None:  # outputs are made inside the loop they run on
            outs = _outputs(sim, mqtt, mqtt_qos, sparkplug, opcua, modbus, bind)
            if rbe is not None:
                from genba.sim.outputs import ReportByException

                outs = [ReportByException(o, sim.tag_paths, deadband_pct=rbe) for o in outs]
            await _serve(sim, outs, speed, until)

        asyncio.run(serve())
    elif until is not None:
        _run_fast(sim, until)
    if truth is not None:
        end = sim.t0_ns + round(min(sim.now_s, until or sim.now_s) * 1e9)
        for path in ground_truth(sim, sim.t0_ns, end).to_files(truth):
            click.echo(f"genba: wrote {path}", err=True)


def _scenario(name: str, seed: int | None) -> Scenario:
    from genba.sim import load_scenario

    try:
        sc = load_scenario(name)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None
    if seed is not None:
        sc = sc.model_copy(update={"plant": sc.plant.model_copy(update={"seed": seed})})
    return sc


def _start(start: str | None) -> int | None:
    if start is None:
        return None
    try:
        return parse_time(start, now_ns=time.time_ns())
    except GenbaError as e:
        raise click.BadParameter(str(e), param_hint="--start") from None


def _run_fast(sim: Simulator, until: float) -> None:
    """Simulate to ``until`` as fast as the CPU allows, saying so once a simulated day."""
    wall0 = time.perf_counter()
    while sim.now_s < until:
        sim.advance(min(sim.now_s + 3600.0, until))
        if sim.now_s % 86_400 < 1 or sim.now_s >= until:
            click.echo(
                f"genba: simulated {sim.now_s / 3600:.0f} of {until / 3600:.0f} h "
                f"({time.perf_counter() - wall0:.1f} s)",
                err=True,
            )


def _outputs(
    sim: Simulator,
    mqtt: str | None,
    mqtt_qos: int,
    sparkplug: str | None,
    opcua: int | None,
    modbus: int | None,
    bind: str,
) -> list[Output]:
    from genba.sim.outputs import ModbusOutput, MqttOutput, OpcUaOutput, SparkplugOutput

    outs: list[Output] = []
    if mqtt:
        outs.append(MqttOutput(sim, *_host_port(mqtt, 1883), qos=mqtt_qos))
    if sparkplug:
        outs.append(SparkplugOutput(sim, *_host_port(sparkplug, 1883)))
    if opcua is not None:
        outs.append(OpcUaOutput(sim, opcua, host=bind))
    if modbus is not None:
        outs.append(ModbusOutput(sim, modbus, host=bind))
    return outs


async def _serve(sim: Simulator, outputs: list[Output], speed: float, until: float | None) -> None:
    from genba.sim.outputs import run_outputs

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    names = ", ".join(o.name for o in outputs)
    click.echo(f"genba: serving {names} at {speed:g}× real time; Ctrl-C stops", err=True)
    await run_outputs(sim, outputs, speed=speed, until_s=until, stop=stop)
    click.echo(f"genba: stopped at {sim.now_s / 3600:.2f} simulated hours", err=True)
