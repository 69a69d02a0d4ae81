"""``genba ai train`` and ``genba ai models``: detectors trained from the historian for each
machine a ``[[model]]`` matches, kept as versions in the record log."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from genba.ai import decisions, load_version, pin, versions
from genba.ai._registry import RECORD_KIND
from genba.ai._train import frame, running_rows, steady
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


def watch_of(
    models: list[Any], config: GenbaConfig, store: Any, reg: TagRegistry, *, bus: Any = None, trains: bool = False
) -> Any:  # fmt: skip
    """The node's ``ai`` component over ``store`` without a node (``trains``: it may train)."""
    from genba.bus import Bus
    from genba.node._ai import AnomalyWatch

    return AnomalyWatch(
        models, list(config.machine), store=store, bus=bus or Bus(reg), registry=reg,
        clock=RealClock(), alarms=None, config=config if trains else None,
    )  # fmt: skip


async def replay(watch: Any, w: Any, out: Any, f: Any, ids: np.ndarray, model: Any) -> tuple[dict[int, float], dict[int, float], np.ndarray]:  # fmt: skip
    """Feed frame ``f`` (state, signals, mode) to the watch tick by tick: the scores it
    published, the batch path's scores of the same steady rows, and those rows."""
    published: dict[int, float] = {}
    for t, row in zip(f.t_ns.tolist(), f.x, strict=True):
        watch.take(SampleBatch.from_columns(tag_ids=ids, ts_ns=np.full(len(ids), t), values=row))  # fmt: skip
        await watch.tick(t)
        for item in await out.drain(timeout=0):
            if isinstance(item, SampleBatch):
                published[t] = float(item.values[0])
    rows = steady(f.t_ns, f.x[:, 0] == MachineState.RUNNING, model.settle, model.settle_max_s)
    batch = w.detector.score(f.x[rows, 1:-1], mode=f.x[rows, -1]).score / w.detector.threshold
    want = {t: s for t, s in zip(f.t_ns[rows].tolist(), batch.tolist(), strict=True) if s == s}
    return published, want, rows


def store_run(path: Path, sim: Simulator, steps_s: list[float], transform: Any = None) -> None:
    """Simulate up to each of ``steps_s`` and store it in the config's store as a node does
    (``transform(tags, hour_end_s, values)`` may change the values first: a swapped sensor)."""
    config = load_config(path)
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry()
        tags = reg.ensure(sim.tag_specs())
        store.save_tags(tags)
        ids = np.array([t.id for t in tags], dtype=np.int32)
        for end in steps_s:
            ts, values = sim.advance(end)
            if transform is not None:
                transform(tags, end, values)
            rows, cols = np.nonzero(~np.isnan(values))
            store.append(SampleBatch.from_columns(tag_ids=ids[cols], ts_ns=ts[rows], values=values[rows, cols]))  # fmt: skip
    finally:
        store.close()


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped node's store holding 12 simulated hours of the demo line at 1 Hz."""
    tmp = tmp_path_factory.mktemp("plant")
    path = write_config(tmp, demo_config_text(extra=MODELS))
    store_run(path, Simulator(load_scenario("demo"), t0_ns=T0), [h * 3600.0 for h in range(1, HOURS + 1)])  # fmt: skip
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
        assert v.mode == "product"  # normal learnt per product, on the speed
        assert v.params["conditions"] == "speed"
        f = frame(store, reg, v.machine, [*v.signals, v.mode], span, 5 * 10**9)
        kpi = Kpi(config, reg, store, RealClock(), vouched_until=lambda: span.end_ns)
        rows = steady(f.t_ns, running_rows(kpi, v.machine, f.t_ns, span), 2.0, 1800.0)
        assert rows.sum() == v.rows
        s = det.score(f.x[rows, :-1], mode=f.x[rows, -1])
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
    assert "no [[model]] or [[rul]] named 'nope'; models: watch, broken" in r.output


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
    # the node tries to train the model that never trained, and says why it cannot
    for _ in range(100):
        problems = (await rn.http.get("/api/health")).json()["problems"]
        if any("model broken for berlin/packaging/line1/filler not trained" in p for p in problems):
            break
        await asyncio.sleep(0.05)
    assert any("no_such_tag" in p for p in problems), problems
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

    CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "watch"])
    config = load_config(plant)
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        bus = Bus(reg)
        model = next(m for m in config.model if m.name == "watch")
        watch = watch_of([model], config, store, reg, bus=bus)
        assert watch.problems() == []
        w = next(w for w in watch.watches if w.machine.path.endswith("/filler"))
        out = bus.subscribe(f"{w.machine.path}/anomaly/#", name="test")
        # the filler's own rows, tick by tick as the node gets them: the node scores exactly
        # what the batch path (training, `genba ai evaluate sim`) scores on the steady rows
        v = w.version
        span = TimeRange(v.trained_from_ns, v.trained_to_ns)
        f = frame(store, reg, w.machine.path, ["state", *v.signals, v.mode], span, 5 * 10**9)
        assert w.state is not None
        assert w.mode is not None
        ids = np.array([w.state, *w.inputs, w.mode], dtype=np.int32)
        published, want, rows = await replay(watch, w, out, f, ids, model)
        assert len(want) > 1000
        assert published.keys() == want.keys()
        assert np.allclose([published[t] for t in want], list(want.values()), rtol=1e-9)
        # its own training rows: a few over the threshold (the warm-up the trimming left out)
        over = float(np.mean(np.array(list(want.values())) > 1.0))
        assert over == pytest.approx(v.metrics["training_alarm_share"])
        assert over < 0.1
        # a stop gives no row; after it, vibration far above anything seen in training
        t = int(f.t_ns[-1])

        async def feed(row: np.ndarray, state: float) -> list[SampleBatch]:
            nonlocal t
            t += 5 * 10**9
            watch.take(SampleBatch.from_columns(tag_ids=ids, ts_ns=np.full(len(ids), t), values=np.r_[state, row]))  # fmt: skip
            await watch.tick(t)
            return [b for b in await out.drain(timeout=0.01) if isinstance(b, SampleBatch)]

        normal = f.x[rows][-1, 1:]
        assert await feed(normal, float(MachineState.DOWN)) == []
        j = v.signals.index("vibration")
        faulty = normal.copy()
        faulty[j] *= 10
        window = int(w.detector.params["window"])
        got = [await feed(faulty, 1.0) for _ in range(window)]
        assert got[0] == []  # settling after the stop
        last = got[-1][0]
        assert last.values[0] > 1.0
        assert int(np.argmax(last.values[1:])) == j
        assert last.values[1:].sum() == pytest.approx(1.0)
        assert w.top().startswith("Top signals: vibration ")
        assert watch.health()["models"][0]["scored"] >= len(want)
    finally:
        store.close()


def test_a_model_never_trained_is_a_problem_naming_the_fix(tmp_path: Path) -> None:

    config = load_config(write_config(tmp_path, demo_config_text(extra=MODELS)))
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        watch = watch_of(list(config.model), config, store, reg)
        assert watch.watches == []
        assert len(watch.problems()) == 4  # three machines of one model, one of the other
        assert "model watch has no trained version for berlin/packaging/line1/filler: the node trains it once it holds 0.5 days of its data" in watch.problems()[0]  # fmt: skip
    finally:
        store.close()


async def test_the_node_trains_a_model_without_a_version_and_retrains_it_on_schedule(plant: Path) -> None:  # fmt: skip
    from genba.config import ModelSettings

    config = load_config(plant)
    model = ModelSettings(name="in-node", machines="berlin/packaging/line1/filler", train_days=0.5, every_s=5, retrain_days=0.25, holdout_days=0.1)  # fmt: skip
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        watch = watch_of([model], config, store, reg, trains=True)
        assert watch.watches == []
        assert len(watch.problems()) == 1
        end = T0 + HOURS * 3600 * 10**9
        assert await watch.train_due(end) == ["in-node/berlin/packaging/line1/filler"]
        assert watch.problems() == []
        assert [w.version.version for w in watch.watches] == [1]
        assert await watch.train_due(end + 3600 * 10**9) == []  # not due yet
        later = end + 6 * 3600 * 10**9
        assert await watch.train_due(later) == ["in-node/berlin/packaging/line1/filler"]
        # the retrained version is a challenger, trained up to holdout_days before: the
        # store holds nothing after `end`, so there is nothing unseen to judge it on, and the
        # champion stays in service (a person can still pin it)
        assert [(v.version, v.trained_to_ns, v.as_of_ns) for v in versions(store, "in-node")] == [
            (1, end, end), (2, later - 8640 * 10**9, later),
        ]  # fmt: skip
        (w,) = watch.watches
        assert w.version.version == 1
        d = decisions(store, "in-node")
        assert [(x.challenger, x.promoted) for x in d] == [(1, True), (2, False)]
        assert d[1].reason.startswith("champion kept: ")
        assert d[1].rows == 0
        assert await watch.train_due(later + 3600 * 10**9) == []  # not due again yet
        pin(store, "in-node", w.machine.path, 2, later)
        assert watch.serve("in-node", w.machine.path).version == 2
        assert [w.version.version for w in watch.watches] == [2]
        # a model that cannot be trained says why, and the trained one keeps watching
        bad = model.model_copy(update={"name": "bad", "tags": ["nope"]})
        watch2 = watch_of([bad, model], config, store, reg, trains=True)
        assert await watch2.train_due(later) == []
        assert [w.model.name for w in watch2.watches] == ["in-node"]
        assert any("model bad for berlin/packaging/line1/filler not trained" in p and "nope" in p for p in watch2.problems())  # fmt: skip
    finally:
        store.close()


async def test_a_streaming_model_keeps_learning_normal_rows_in_the_node_and_not_a_fault(plant: Path) -> None:  # fmt: skip
    from genba.config import ModelSettings

    config = load_config(plant)
    model = ModelSettings(name="stream", machines="berlin/packaging/line1/filler", detector="hst", train_days=0.5, every_s=5, settings={"window": 20})  # fmt: skip
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        watch = watch_of([model], config, store, reg, trains=True)
        end = T0 + HOURS * 3600 * 10**9
        assert await watch.train_due(end) == ["stream/berlin/packaging/line1/filler"]
        (w,) = watch.watches
        v = w.version
        span = TimeRange(v.trained_to_ns - 3600 * 10**9, v.trained_to_ns)
        f = frame(store, reg, w.machine.path, ["state", *v.signals, v.mode], span, 5 * 10**9)
        rows = f.x[f.x[:, 0] == MachineState.RUNNING][:40]
        assert w.state is not None
        assert w.mode is not None
        ids = np.array([w.state, *w.inputs, w.mode], dtype=np.int32)
        out = watch.bus.subscribe(f"{w.machine.path}/anomaly/score", name="test")
        j = v.signals.index("vibration")
        faulty = rows.copy()
        faulty[:, 1 + j] *= 10
        t, learnt, alarmed = end, [], []
        for row in [*rows, *faulty]:  # its own rows, then a fault
            seen = float(w.detector.state["seen"][0])
            t += 5 * 10**9
            watch.take(SampleBatch.from_columns(tag_ids=ids, ts_ns=np.full(len(ids), t), values=row))  # fmt: skip
            await watch.tick(t)
            got = [b for b in await out.drain(timeout=0.01) if isinstance(b, SampleBatch)]
            alarmed.append(bool(got) and float(got[0].values[0]) > 1.0)
            learnt.append(float(w.detector.state["seen"][0]) - seen)
        # every row it scored is learnt, unless its window is in alarm
        assert learnt == [0.0 if a else 1.0 for a in alarmed]
        assert sum(alarmed[len(rows) :]) > len(rows) // 2  # the fault alarms ...
        assert alarmed[-1]  # ... and stays in alarm: the fault is not learnt as normal
    finally:
        store.close()


@pytest.mark.parametrize("stat", ["mean", "ewma"])
async def test_the_node_keeps_each_window_in_order(plant: Path, stat: str) -> None:
    """The watch's ring of raw scores, read oldest first: a weighted window (ewma) scores in the
    node what it scores in the batch, as the median and the mean do."""
    from genba.bus import Bus

    CliRunner().invoke(cli, ["ai", "train", "-c", str(plant), "--model", "watch"])
    config = load_config(plant)
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        bus = Bus(reg)
        model = next(m for m in config.model if m.name == "watch")
        watch = watch_of([model], config, store, reg, bus=bus)
        w = next(w for w in watch.watches if w.machine.path.endswith("/filler"))
        w.detector.params.update(stat=stat, window=25)
        out = bus.subscribe(f"{w.machine.path}/anomaly/score", name="test")
        v = w.version
        span = TimeRange(v.trained_from_ns, v.trained_from_ns + 3 * 3600 * 10**9)
        f = frame(store, reg, w.machine.path, ["state", *v.signals, v.mode], span, 5 * 10**9)
        assert w.state is not None
        assert w.mode is not None
        ids = np.array([w.state, *w.inputs, w.mode], dtype=np.int32)
        published, want, _ = await replay(watch, w, out, f, ids, model)
        assert len(want) > 500
        assert published.keys() == want.keys()
        assert np.allclose([published[t] for t in want], list(want.values()), rtol=1e-9)
    finally:
        store.close()


def test_a_version_names_the_library_that_fitted_it(tmp_path: Path) -> None:
    from importlib import metadata

    from genba.ai import make_detector
    from genba.ai._registry import save_version
    from genba.historian.duckdb import DuckDBStore

    store = DuckDBStore(tmp_path / "models.duckdb")
    try:
        x = np.random.default_rng(0).normal(size=(300, 3))
        det = make_detector("iforest").fit(x, ["a", "b", "c"])
        v = save_version(store, "m", "s/a/l/m", det, trained_from_ns=0, trained_to_ns=1, rows=300, metrics={}, now_ns=1)  # fmt: skip
        assert v.libraries["scikit-learn"] == metadata.version("scikit-learn")
        np.testing.assert_array_equal(load_version(v).score(x).score, det.score(x).score)
    finally:
        store.close()
