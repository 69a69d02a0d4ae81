"""Remaining useful life: lives and labels from the historian, the model, its registry
versions, the node's estimates (tags, API, alarm) and ``genba ai evaluate rul`` against the
simulator's truth."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from genba.ai import RulModel, in_service, load_rul, pin, rollback, versions
from genba.ai._rul import Lives, read_lives
from genba.ai._rulsim import _judge
from genba.cli import cli
from genba.clock import RealClock
from genba.config import RulSettings, load_config
from genba.errors import ModelError
from genba.historian import TimeRange, open_store
from genba.sim import Simulator, load_scenario
from genba.tags import TagRegistry
from genba.types import NS_PER_S, SampleBatch
from tests.ai.test_train import store_run
from tests.conftest import demo_config_text, write_config
from tests.web.test_dashboard import browser, page  # noqa: F401 - fixtures

pytest.importorskip("sklearn", reason="the RUL model is fitted with scikit-learn (the ml extra)")

T0 = 1_767_571_200 * NS_PER_S  # Monday 2026-01-05 00:00Z
DAYS = 8
TRAIN_DAYS = 4
H = 3600 * NS_PER_S
RUL = """
[[rul]]
name = "bearings"
machines = "berlin/packaging/line1/#"
train_days = 30
min_failures = 3
horizon_h = 4
cap_h = 24
holdout_days = 3
"""


def short_lives_scenario(tmp: Path) -> Path:
    """The wear scenario with lives of about 14 running hours that show their last 8: a few
    failures a machine a day, so a test sees several in days of simulated time."""
    from importlib.resources import files

    src = files("genba.sim.scenarios").joinpath("wear.toml").read_text()
    src = src.replace("wear_weibull_scale_h = 120.0", "wear_weibull_scale_h = 16.0")
    src = src.replace("wear_warning_h = 48.0", "wear_warning_h = 8.0")
    src = src.replace("wear_repair_min = 90.0", "wear_repair_min = 30.0")
    path = tmp / "short-lives.toml"
    path.write_text(src, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A stopped node's store holding eight simulated days of the short-lives plant, with the
    simulator's failures (the truth) by machine."""
    tmp = tmp_path_factory.mktemp("rul")
    scenario = short_lives_scenario(tmp)
    path = write_config(tmp, demo_config_text(extra=RUL))
    sim = Simulator(load_scenario(str(scenario)), t0_ns=T0)
    store_run(path, sim, [k * 6 * 3600.0 for k in range(1, DAYS * 4 + 1)])
    truth = {
        m.path: [
            (T0 + int(f.start_s * NS_PER_S), f.wear_out)
            for f in sim.plant.failures
            if f.machine == m.index
        ]
        for m in sim.plant.machines
    }
    return path, scenario, truth


def ensure_trained(path: Path) -> None:
    """A first version of each machine, trained on the first TRAIN_DAYS (once per module)."""
    config = load_config(path)
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        have = versions(store, "bearings")
    finally:
        store.close()
    if not have:
        end = (T0 + TRAIN_DAYS * 24 * H) // 1_000_000
        r = CliRunner().invoke(cli, ["ai", "train", "-c", str(path), "--end", str(end)])
        assert r.exit_code == 0, r.output


# -- lives and labels: pure logic ----------------------------------------------------------------
def hand_lives() -> Lives:
    """Ten rows an hour apart, running but for rows 3-4 (a failure from row 3, repaired at
    row 5) and a failure at row 8."""
    t = np.arange(10, dtype=np.int64) * H
    running = np.array([1, 1, 1, 0, 0, 1, 1, 1, 0, 1], dtype=bool)
    return Lives(
        t_ns=t, x=np.zeros((10, 1)), mode=np.zeros(10), running=running, steady=running,
        run_h=(np.cumsum(running) - running).astype(float), failures_ns=np.array([3 * H, 8 * H]),
        repairs_ns=np.array([5 * H, 9 * H]), every_s=3600.0, end_ns=10 * H,
    )  # fmt: skip


def test_a_rows_label_is_running_hours_to_the_next_failure_capped_and_censored_after_the_last() -> None:  # fmt: skip
    lives = hand_lives()
    # run_h (before each row): 0 1 2 3 3 3 4 5 6 6; failures at rows 3 and 8
    assert lives.rul_h(100.0)[:3].tolist() == [3.0, 2.0, 1.0]
    assert lives.rul_h(100.0)[5:8].tolist() == [3.0, 2.0, 1.0]
    assert lives.rul_h(1.5)[:3].tolist() == [1.5, 1.5, 1.0]  # capped
    assert lives.end_h == 7.0
    # after the last failure: unknown, unless cap_h running hours passed without one
    assert np.isnan(lives.rul_h(100.0)[9])
    assert lives.rul_h(0.0)[9] == 0.0
    # age: running hours since the last repair; unknown before the first
    age = lives.age_h()
    assert np.isnan(age[:5]).all()
    assert age[5:8].tolist() == [0.0, 1.0, 2.0]
    assert lives.life().tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2]


def test_a_machine_with_too_few_failures_is_refused_with_the_count() -> None:
    lives = dataclasses.replace(hand_lives(), failures_ns=np.array([3 * H]), repairs_ns=np.array([5 * H]))  # fmt: skip
    with pytest.raises(ModelError, match=r"not enough failures to learn from \(1 found, 4 needed\)"):  # fmt: skip
        RulModel().fit(lives, ["vibration"], min_failures=4)


def test_an_unknown_failure_reason_is_a_config_error_naming_the_reasons(tmp_path: Path) -> None:
    from genba.config import parse_config
    from genba.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="failure_reasons bearing are not in the reason tree"):  # fmt: skip
        parse_config(demo_config_text(extra=RUL + 'failure_reasons = ["bearing"]\n'))


# -- from the historian ----------------------------------------------------------------------------
def test_lives_from_the_historian_find_each_wear_out_the_simulator_logged(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    path, _, truth = plant
    config = load_config(path)
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        reg = TagRegistry(store.load_tags())
        machine = config.machine[0]
        span = TimeRange(T0, T0 + DAYS * 24 * H)
        lives, names, conditions, mode = read_lives(config, store, reg, RealClock(), config.rul[0], machine, span)  # fmt: skip
        wear = [t for t, w in truth[machine.path] if w]
        assert len(wear) >= 5
        # each wear-out, within the 1 s sampling of the state tag; sudden failures not counted
        assert len(lives.failures_ns) == len(wear)
        assert np.abs(lives.failures_ns - np.array(wear)).max() <= NS_PER_S
        assert conditions == ["speed"]
        assert mode == "product"
        assert {"vibration", "temperature", "motor_current"} <= set(names)
    finally:
        store.close()


def test_train_stores_a_rul_version_that_predicts_the_held_out_days(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    path, _, truth = plant
    end = T0 + TRAIN_DAYS * 24 * H
    ensure_trained(path)
    config = load_config(path)
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        found = versions(store, "bearings")
        assert len(found) == 3
        v = found[0]
        assert v.detector == "rul"
        assert {"scikit-learn", "skops"} <= set(v.libraries)
        assert v.metrics["failures"] >= 3
        assert v.trained_to_ns == end
        model = load_rul(v)
        # the days after training, predicted from the history before each row
        reg = TagRegistry(store.load_tags())
        rul = config.rul[0]
        machine = next(m for m in config.machine if m.path == v.machine)
        lives, *_ = read_lives(config, store, reg, RealClock(), rul, machine, TimeRange(end - 24 * H, T0 + DAYS * 24 * H))  # fmt: skip
        est = model.predict(lives)
        wear = np.array([t for t, w in truth[machine.path] if w], dtype=np.int64)
        got = _judge(0, machine.path, lives.t_ns, lives.run_h, est.rul_h, est.low_h, est.high_h, est.p_fail, wear, 0, end, rul, 8.0, 0.5)  # fmt: skip
        assert got.wear_outs >= 1
        assert got.rows > 100
        mae = float(np.mean(got.abs_errors_h))
        # the truth over a life's last 8 running hours averages 4 h: knowing nothing is ~4 h off
        assert mae < 2.0, mae
        assert got.warned == got.judged
        # the same bytes give the same predictions (skops, no pickle)
        again = RulModel.load(model.save()).predict(lives)
        assert np.array_equal(again.rul_h, est.rul_h, equal_nan=True)
        assert np.array_equal(again.p_fail, est.p_fail, equal_nan=True)
    finally:
        store.close()


def test_a_saved_model_holding_another_type_is_refused(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    import functools

    import skops.io as sio

    path, _, _ = plant
    ensure_trained(path)
    config = load_config(path)
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        data = versions(store, "bearings")[0].data()
    finally:
        store.close()
    # a blob that would call a function on load: skops names its types, genba refuses them
    evil = sio.dumps(functools.partial(print, "loaded"))
    assert sio.get_untrusted_types(data=evil)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, evil if n == "rul.skops" else zin.read(n))
    with pytest.raises(ModelError, match="holds types genba does not load"):
        RulModel.load(out.getvalue())
    with pytest.raises(ModelError, match="not a genba RUL model"):
        RulModel.load(pickle.dumps("not a zip"))


def test_a_broken_challenger_is_never_promoted(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    """A challenger fitted on shuffled labels, or on a tag that carries no wear, loses to the
    champion on the unseen days, and the decision says so with the evidence."""
    from genba.ai._iterate import decide
    from genba.ai._registry import save_version
    from genba.ai._rul import train_rul

    path, _, _ = plant
    ensure_trained(path)
    config = load_config(path)
    rul = config.rul[0]
    machine = config.machine[0]
    end = T0 + TRAIN_DAYS * 24 * H
    now = T0 + DAYS * 24 * H
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        champion = in_service(store, rul.name, machine.path)
        assert champion is not None
        # shuffled labels: the failures moved to random times of the same history
        span = TimeRange(end - int(rul.train_days * 24 * H), end)
        lives, names, conditions, _ = read_lives(config, store, reg, RealClock(), rul, machine, span)  # fmt: skip
        rng = np.random.default_rng(0)
        fake = np.sort(rng.choice(lives.t_ns[lives.running], len(lives.failures_ns), replace=False))  # fmt: skip
        shuffled = dataclasses.replace(lives, failures_ns=fake, repairs_ns=fake + 30 * 60 * NS_PER_S)  # fmt: skip
        model = RulModel(horizon_h=rul.horizon_h, cap_h=rul.cap_h, conditions=",".join(conditions)).fit(shuffled, names, 2)  # fmt: skip
        bad_labels = save_version(store, rul.name, machine.path, model, trained_from_ns=span.start_ns, trained_to_ns=end, rows=1, metrics={}, now_ns=now)  # fmt: skip
        # the wrong tag: pressure, which wear does not move
        wrong = rul.model_copy(update={"tags": ["pressure"]})
        wrong_tag = train_rul(config, store, reg, RealClock(), wrong, machine, end)
        for bad in (bad_labels, wrong_tag):
            d = decide(config, store, reg, RealClock(), rul, machine, champion, bad, now)
            assert not d.promoted, (d.reason, d.champion_loss, d.challenger_loss)
            assert d.metric == "mae_h"
            assert d.challenger_loss is not None
            assert d.champion_loss is not None
            assert d.challenger_loss > d.champion_loss
            assert d.ci_low is not None
            assert d.improvement is not None
            assert d.improvement < 0  # worse, not merely "not significantly better"
            assert d.reason.startswith("champion kept: ")
            assert d.groups >= 4  # whole lives resampled: enough of them to decide on
        # and the champion judged against itself is no better: kept too, the interval on 0
        d = decide(config, store, reg, RealClock(), rul, machine, champion, champion, now)
        assert not d.promoted
        assert d.improvement == 0.0
    finally:
        store.close()


def test_pin_and_rollback_put_a_version_in_service_over_the_decisions(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    path, _, _ = plant
    ensure_trained(path)
    config = load_config(path)
    machine = config.machine[1].path
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        first = in_service(store, "bearings", machine)
        assert first is not None
        with pytest.raises(ModelError, match="has no version 99"):
            pin(store, "bearings", machine, 99, T0)
        with pytest.raises(ModelError, match="no earlier version in service"):
            rollback(store, "bearings", machine, T0)
    finally:
        store.close()
    # a second version, pinned by the CLI, then rolled back to the first
    r = CliRunner().invoke(cli, ["ai", "train", "-c", str(path), "--end", str((T0 + DAYS * 24 * H) // 1_000_000)])  # fmt: skip
    assert "bearings" in r.output
    store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    try:
        newest = versions(store, "bearings", machine)[-1]
    finally:
        store.close()
    assert newest.version > first.version
    r = CliRunner().invoke(cli, ["ai", "pin", "-c", str(path), "--model", "bearings", "--machine", machine, "--version", str(newest.version)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"version {newest.version} in service" in r.output
    r = CliRunner().invoke(cli, ["ai", "pin", "-c", str(path), "--model", "bearings", "--machine", machine, "--unpin"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["ai", "decisions", "-c", str(path), "--model", "bearings", "--format", "json"])  # fmt: skip
    got = [d for d in json.loads(r.output) if d["machine"] == machine]
    assert got[0]["promoted"]
    assert got[0]["champion"] is None
    assert got[-1]["challenger"] == newest.version
    assert got[-1]["eval_from_ns"] >= T0 + (DAYS - 3) * 24 * H


# -- the node ---------------------------------------------------------------------------------------
async def test_the_node_estimates_publishes_and_alarms(plant: tuple[Path, Path, dict[str, Any]], run_node: Any) -> None:  # fmt: skip
    from genba.node import AlarmService, RulWatch

    path, _, _ = plant
    end = T0 + DAYS * 24 * H
    ensure_trained(path)
    rn = await run_node(load_config(path))
    watch = rn.node.component(RulWatch)
    sub = rn.node.bus.subscribe("berlin/packaging/line1/+/rul/#", name="test")
    got = await watch.estimate(end)
    assert {e.machine for e in got} == {m.path for m in rn.node.config.machine}
    for e in got:
        assert 0 <= e.low_h <= e.rul_h <= e.high_h <= 24.0
        assert 0.0 <= e.p_fail <= 1.0
        assert 0.3 < e.running_share <= 1.0
        assert e.plan_before_ns is not None
        assert e.plan_before_ns >= e.at_ns
        assert e.at_ns <= end
    published = [b for b in await sub.drain(timeout=1.0) if isinstance(b, SampleBatch)]
    assert sum(len(b) for b in published) == 4 * len(got)  # hours, low_h, high_h, p_fail
    rows = (await rn.http.get("/api/rul")).json()
    assert {x["machine"] for x in rows} == {e.machine for e in got}
    one = (await rn.http.get("/api/rul", params={"machine": got[0].machine})).json()
    assert len(one) == 1
    assert one[0]["rul_h"] == pytest.approx(got[0].rul_h)
    assert one[0]["plan_before_local"].endswith("+01:00")  # Europe/Berlin in January
    # the alarm: at p_fail over alarm_probability, its text gives the date to plan before
    engine = rn.node.component(AlarmService).engine
    name = f"bearings/{got[0].machine}/failure"
    assert name in {a["name"] for a in (await rn.http.get("/api/alarms")).json()}
    tag = rn.node.registry.get(f"{got[0].machine}/rul/p_fail")
    now = rn.node.clock.now_ns()
    engine.process(SampleBatch.from_columns(tag_ids=[tag.id], ts_ns=[now], values=[0.0]))
    events = engine.process(SampleBatch.from_columns(tag_ids=[tag.id], ts_ns=[now + 1], values=[0.9]))  # fmt: skip
    fired = [x for x in events if x["alarm"] == name]
    assert fired
    assert fired[0]["event"] == "activated"
    assert "plan maintenance before" in fired[0]["message"]
    health = (await rn.http.get("/api/health")).json()
    assert len(health["rul"]["machines"]) == 3


async def test_a_machine_without_failures_says_so_in_the_api(tmp_path: Path, run_node: Any) -> None:  # fmt: skip
    from genba.node import RulWatch

    rn = await run_node(load_config(write_config(tmp_path, demo_config_text(extra=RUL))))
    watch = rn.node.component(RulWatch)
    await watch.train_due(rn.node.clock.now_ns())
    for _ in range(200):  # the node's own first round may still be reading the history
        rows = (await rn.http.get("/api/rul")).json()
        if all("problem" in x and "not enough" in x["problem"] for x in rows):
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 3
    assert all("not enough failures to learn from (0 found, 3 needed)" in x["problem"] for x in rows), rows  # fmt: skip
    problems = (await rn.http.get("/api/health")).json()["problems"]
    assert sum("not enough failures" in p for p in problems) == 3


# -- genba ai evaluate rul ----------------------------------------------------------------------
def test_judge_counts_a_perfect_forecast_and_a_crying_wolf() -> None:
    t = np.arange(200, dtype=np.int64) * H
    run_h = np.arange(200, dtype=float)  # running all the time
    wear = np.array([100 * H, 190 * H])  # fails after 100 and 190 running hours
    truth = np.where(run_h < 100, 100.0, 190.0) - run_h
    rul = RulSettings(name="r", horizon_h=24, cap_h=96)
    perfect = _judge(1, "m", t, run_h, truth, truth - 1, truth + 1, (truth <= 24).astype(float), wear, 0, 50 * H, rul, 48.0, 1.0)  # fmt: skip
    assert perfect.abs_errors_h
    assert max(perfect.abs_errors_h) == 0.0
    assert perfect.covered == perfect.rows
    assert (perfect.warnings, perfect.true_warnings, perfect.judged, perfect.warned) == (2, 2, 2, 2)
    wolf = np.where(run_h % 10 < 5, 1.0, 0.0)  # a warning raised every 10 hours
    w = _judge(1, "m", t, run_h, truth, truth, truth, wolf, wear, 0, 50 * H, rul, 48.0, 1.0)
    assert w.warnings == 15
    assert w.true_warnings < 6
    assert w.warned == 2


def test_the_command_reports_rul_error_and_warnings_per_seed(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    path, scenario, _ = plant  # seed 42: the plant of the fixture, through the command's own run
    r = CliRunner().invoke(cli, [
        "ai", "evaluate", "rul", "-c", str(path), "--model", "bearings", "--scenario", str(scenario), "--seeds", "42",
        "--days", str(DAYS), "--train-days", str(TRAIN_DAYS), "--window-h", "8", "--format", "json",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    p = got["pooled"]
    assert p["machines"] == 3
    assert p["trained"] == 3, got["machines"]
    assert p["wear_outs"] >= 1
    assert p["mae_h"] is not None
    assert p["mae_h"] < 4.0
    assert 0.0 <= p["precision"] <= 1.0
    assert 0.0 <= p["recall"] <= 1.0


@pytest.mark.browser
@pytest.mark.socket
async def test_the_machine_page_and_the_andon_show_when_to_plan_maintenance(
    plant: tuple[Path, Path, dict[str, Any]],
    run_node: Any,
    page: tuple[Any, list[str]],  # noqa: F811
) -> None:
    from genba.node import RulWatch
    from tests.web.test_dashboard import ARTIFACTS

    path, _, _ = plant
    ensure_trained(path)
    rn = await run_node(load_config(path))
    (e, *_) = await rn.node.component(RulWatch).estimate(T0 + DAYS * 24 * H)
    p, problems = page
    await p.goto(f"{rn.url}/machine?path={e.machine}")
    box = p.locator("#rul dl")
    await box.wait_for(timeout=10_000)
    assert await p.locator("#rul .rul-hours").inner_text() == f"{round(e.rul_h)} running h ({round(e.low_h)}–{round(e.high_h)})"  # fmt: skip
    plan = await p.locator("#rul .rul-plan").inner_text()
    assert e.plan_before_ns is not None
    assert plan == rn.node.component(RulWatch).rows()[0]["plan_before_local"][:16].replace("T", " ")  # fmt: skip
    await p.screenshot(path=ARTIFACTS / "machine-rul.png", full_page=True)
    await p.goto(f"{rn.url}/andon")
    dd = p.locator(f'article[data-machine="{e.machine}"] dd.rul')
    await p.wait_for_function(
        f"""() => {{ const d = document.querySelector('article[data-machine="{e.machine}"] dd.rul');
                    return d && !d.hidden && d.textContent !== "–"; }}""",
        timeout=15_000,
    )
    assert await dd.inner_text() == plan
    await p.screenshot(path=ARTIFACTS / "andon-rul.png", full_page=True)
    assert problems == []


def test_the_learning_curve_scores_each_version_in_service_on_days_it_never_saw(plant: tuple[Path, Path, dict[str, Any]]) -> None:  # fmt: skip
    path, scenario, _ = plant
    r = CliRunner().invoke(cli, [
        "ai", "evaluate", "curve", "-c", str(path), "--model", "bearings", "--scenario", str(scenario),
        "--seed", "42", "--steps", "2", "--step-days", "2", "--window-h", "4", "--format", "json",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    steps = json.loads(r.output)["steps"]
    assert [s["day"] for s in steps] == [2.0, 4.0]
    last = steps[-1]
    assert last["in_service"] == 3  # every machine has a version once its failures allow
    # the versions in service are scored on the fixed span after day 4 that none saw
    assert last["test_rows"] > 100
    assert last["test_mae_h"] < 2.0  # over the last 4 running hours before each wear-out
    # before that, too few failures: not trained, and said so
    assert all("not enough failures" in n for n in steps[0]["not_trained"])
