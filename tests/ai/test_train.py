"""``genba ai train`` and ``genba ai models``: detectors trained from the historian for each
machine a ``[[model]]`` matches, kept as versions in the record log."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from genba.ai import load_version, versions
from genba.ai._registry import RECORD_KIND
from genba.ai._train import frame, running_rows
from genba.cli import cli
from genba.clock import RealClock
from genba.config import GenbaConfig, load_config
from genba.errors import ModelError
from genba.historian import Record, TimeRange, open_store
from genba.kpi import Kpi
from genba.sim import Simulator, load_scenario
from genba.states import MachineState
from genba.tags import TagRegistry
from genba.types import SampleBatch
from tests.conftest import demo_config_text, write_config

T0 = 1_767_571_200 * 10**9  # Monday 2026-01-05 00:00Z
HOURS = 12
MODELS = """
[[model]]
name = "watch"
machines = "berlin/packaging/line1/#"
train_days = 0.5
every_s = 5

[[model]]
name = "broken"
machines = "berlin/packaging/line1/filler"
tags = ["vibration", "no_such_tag"]
"""


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped node's store holding 12 simulated hours of the demo line at 1 Hz."""
    tmp = tmp_path_factory.mktemp("plant")
    path = write_config(tmp, demo_config_text(extra=MODELS))
    config = load_config(path)
    store = open_store(config.store, data_dir=config.data_dir)
    sim = Simulator(load_scenario("demo"), t0_ns=T0)
    reg = TagRegistry()
    tags = reg.ensure(sim.tag_specs())
    store.save_tags(tags)
    ids = np.array([t.id for t in tags], dtype=np.int32)
    for h in range(1, HOURS + 1):
        ts, values = sim.advance(h * 3600.0)
        rows, cols = np.nonzero(~np.isnan(values))
        store.append(SampleBatch.from_columns(tag_ids=ids[cols], ts_ns=ts[rows], values=values[rows, cols]))  # fmt: skip
    store.close()
    return path


def test_train_stores_a_version_per_machine_and_names_what_failed(plant: Path) -> None:
    r = CliRunner().invoke(cli, ["ai", "train", "-c", str(plant)])
    assert r.exit_code == 1, r.output  # one machine of one model could not be trained
    lines = r.output.splitlines()
    assert sum("watch" in ln and "  1  " in ln for ln in lines) == 3
    broken = next(ln for ln in lines if ln.startswith("broken"))
    assert "not trained" in broken
    assert "no_such_tag" in broken
    out = CliRunner().invoke(cli, ["ai", "models", "-c", str(plant), "--format", "json"])
    found = json.loads(out.output)
    assert [(v["name"], v["machine"].rsplit("/", 1)[1], v["version"]) for v in found] == [
        ("watch", "filler", 1), ("watch", "capper", 1), ("watch", "labeler", 1),
    ]  # fmt: skip
    v = found[0]
    # every tag but the KPI signals and setpoints
    assert v["signals"] == ["motor_current", "pressure", "process_temperature", "speed", "temperature", "vibration"]  # fmt: skip
    assert v["trained_to_ns"] - v["trained_from_ns"] == HOURS * 3600 * 10**9
    assert 0.3 < v["metrics"]["running_share"] < 1.0  # stops and breaks left out
    assert v["rows"] == round(v["metrics"]["grid_rows"] * v["metrics"]["running_share"])
    assert len(v["sha256"]) == 64
    assert set(v["libraries"]) == {"genba", "numpy"}
    assert "model_b64" not in v


def test_a_version_scores_its_training_rows_as_trained_and_fails_when_altered(plant: Path) -> None:
    CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "watch"])
    config: GenbaConfig = load_config(plant)
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        mine = [v for v in versions(store, "watch") if v.machine.endswith("/filler")]
        assert [v.version for v in mine] == list(range(1, len(mine) + 1))  # numbered in turn
        v = mine[-1]
        det = load_version(v)
        reg = TagRegistry(store.load_tags())
        span = TimeRange(v.trained_from_ns, v.trained_to_ns)
        f = frame(store, reg, v.machine, v.signals, span, 5 * 10**9)
        kpi = Kpi(config, reg, store, RealClock(), vouched_until=lambda: span.end_ns)
        s = det.score(f.x[running_rows(kpi, v.machine, f.t_ns, span)])
        assert s.threshold == v.metrics["threshold"]
        alarmed = float((s.score[~np.isnan(s.score)] > s.threshold).mean())
        assert alarmed == pytest.approx(v.metrics["training_alarm_share"])
        # a record whose model bytes were changed after it was written is refused
        body = dataclasses.replace(v, version=v.version + 1, model_b64="AAAA" + v.model_b64[4:])
        store.append_records([Record(RECORD_KIND, v.created_ns, v.key, dict(body.__dict__))])
        altered = versions(store, "watch", v.machine)[-1]
        with pytest.raises(ModelError, match=r"fails its hash .* train the model again"):
            load_version(altered)
    finally:
        store.close()


def test_an_unknown_model_name_lists_the_known_ones(plant: Path) -> None:
    r = CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "nope"])
    assert r.exit_code == 1
    assert "no [[model]] named 'nope'; models: watch, broken" in r.output


async def test_the_api_lists_the_registry(plant: Path, run_node: Any) -> None:
    CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "watch"])
    rn = await run_node(load_config(plant))
    r = await rn.http.get("/api/models", params={"name": "watch"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert {v["machine"].rsplit("/", 1)[1] for v in got} == {"filler", "capper", "labeler"}
    assert all(len(v["sha256"]) == 64 and "model_b64" not in v for v in got)
    assert (await rn.http.get("/api/models", params={"name": "nope"})).json() == []
    # the node watches each trained machine; the model that never trained is a problem
    health = (await rn.http.get("/api/health")).json()
    assert {m["machine"].rsplit("/", 1)[1] for m in health["ai"]["models"]} == {"filler", "capper", "labeler"}  # fmt: skip
    assert any("model broken has no trained version" in p for p in health["problems"])
    alarms = {a["name"] for a in (await rn.http.get("/api/alarms")).json()}
    assert "watch/berlin/packaging/line1/filler/anomaly" in alarms
    # when the alarm fires, its text names the model's top signals at that moment
    from genba.node import AlarmService
    from genba.node._ai import AnomalyWatch

    engine = rn.node.component(AlarmService).engine
    w = next(
        x for x in rn.node.component(AnomalyWatch).watches if x.machine.path.endswith("/filler")
    )
    w.shares = np.array([0.1, 0.0, 0.0, 0.0, 0.2, 0.7])
    score = rn.node.registry.get("berlin/packaging/line1/filler/anomaly/score")
    events = engine.process(SampleBatch.from_columns(tag_ids=[score.id], ts_ns=[rn.node.clock.now_ns()], values=[3.0]))  # fmt: skip
    fired = [e for e in events if e["alarm"] == "watch/berlin/packaging/line1/filler/anomaly"]
    assert fired[0]["event"] == "activated"
    assert fired[0]["message"].endswith(
        "Top signals: vibration 70 %, temperature 20 %, motor_current 10 %."
    )


async def test_the_node_watch_scores_a_running_machine_and_alarms_on_a_fault(plant: Path) -> None:
    from genba.bus import Bus
    from genba.node._ai import AnomalyWatch

    CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "watch"])
    config = load_config(plant)
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        bus = Bus(reg)
        model = next(m for m in config.model if m.name == "watch")
        watch = AnomalyWatch(
            [model], list(config.machine), store=store, bus=bus, registry=reg,
            clock=RealClock(), alarms=None,
        )  # fmt: skip
        assert watch.problems() == []
        w = next(w for w in watch.watches if w.machine.path.endswith("/filler"))
        out = bus.subscribe(f"{w.machine.path}/anomaly/#", name="test")
        # the filler's own normal running rows, as the model was trained on them
        span = TimeRange(w.version.trained_from_ns, w.version.trained_to_ns)
        f = frame(store, reg, w.machine.path, w.version.signals, span, 5 * 10**9)
        kpi = Kpi(config, reg, store, RealClock(), vouched_until=lambda: span.end_ns)
        running = f.x[running_rows(kpi, w.machine.path, f.t_ns, span)]
        normal = running[len(running) // 2 :]  # settled running (not the plant's warm-up)
        assert w.state is not None
        window = int(w.detector.params["window"])
        t = T0

        async def feed(row: np.ndarray, state: float) -> list[SampleBatch]:
            nonlocal t
            t += 5 * 10**9
            ids = np.array([w.state, *w.inputs], dtype=np.int32)
            watch.take(SampleBatch.from_columns(tag_ids=ids, ts_ns=np.full(len(ids), t), values=np.r_[state, row]))  # fmt: skip
            await watch.tick(t)
            return [b for b in await out.drain(timeout=0.01) if isinstance(b, SampleBatch)]

        got = [await feed(normal[i], 1.0) for i in range(window + 20)]
        assert not any(got[: window - 1])  # the window fills first
        scores = [b[0].values[0] for b in got[window - 1 :]]
        assert len(scores) == 21
        assert max(scores) < 1.0  # its own normal rows: under the threshold
        shares = got[-1][0].values[1:]
        assert shares.sum() == pytest.approx(1.0)
        # a stop gives no row, and starts the window again
        assert await feed(normal[0], float(MachineState.DOWN)) == []
        # vibration far above anything seen in training: over the threshold, vibration's share largest
        j = w.version.signals.index("vibration")
        faulty = [normal[i].copy() for i in range(window)]
        for r in faulty:
            r[j] *= 10
        got = [await feed(r, 1.0) for r in faulty]
        last = got[-1][0]
        assert last.values[0] > 1.0
        assert int(np.argmax(last.values[1:])) == j
        assert w.top().startswith("Top signals: vibration ")
        assert watch.health()["models"][0]["scored"] >= 22
    finally:
        store.close()


def test_a_model_never_trained_is_a_problem_naming_the_fix(tmp_path: Path) -> None:
    from genba.bus import Bus
    from genba.node._ai import AnomalyWatch

    config = load_config(write_config(tmp_path, demo_config_text(extra=MODELS)))
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        watch = AnomalyWatch(
            list(config.model), list(config.machine), store=store, bus=Bus(reg),
            registry=reg, clock=RealClock(), alarms=None,
        )  # fmt: skip
        assert watch.watches == []
        assert len(watch.problems()) == 4  # three machines of one model, one of the other
        assert "model watch has no trained version for berlin/packaging/line1/filler: run `genba ai train --model watch`" in watch.problems()[0]  # fmt: skip
    finally:
        store.close()
