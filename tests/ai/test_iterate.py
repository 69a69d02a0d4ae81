"""Models that iterate: drift on what a model sees, and a challenger that replaces the
champion only when it measures better — here after a vibration sensor is swapped for one
that reads 40 % higher with an offset, the plant change a model must survive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genba.ai import DETECTORS, decisions, in_service
from genba.ai._champion import MIN_GROUPS, judge
from genba.ai._drift import DRIFT_KIND, check_drift, psi
from genba.ai._registry import ModelVersion
from genba.clock import RealClock
from genba.config import ModelSettings, load_config
from genba.historian import open_store
from genba.sim import Simulator, load_scenario
from genba.tags import TagRegistry
from tests.ai.test_train import store_run, watch_of
from tests.conftest import demo_config_text, write_config

T0 = 1_767_571_200 * 10**9  # Monday 2026-01-05 00:00Z
H = 3600 * 10**9
SWAP_H = 5
FILLER = "berlin/packaging/line1/filler"
MODEL = ModelSettings(
    name="watch", machines=FILLER, train_days=5 / 24, every_s=5, holdout_days=5 / 24,
    drift_days=0.2, warning_h=1.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 simulated hours of the demo line; from hour 5 the filler's vibration sensor reads
    1.4 × the old one + 0.6 mm/s (one product all along: the second starts after hour 17)."""
    tmp = tmp_path_factory.mktemp("swap")
    path = write_config(tmp, demo_config_text())

    def swap(tags: list[Any], end_s: float, values: np.ndarray) -> None:
        if end_s > SWAP_H * 3600:
            vib = [i for i, t in enumerate(tags) if t.path == f"{FILLER}/vibration"]
            values[:, vib] = values[:, vib] * 1.4 + 0.6

    store_run(path, Simulator(load_scenario("demo"), t0_ns=T0), [h * 3600.0 for h in range(1, 17)], swap)  # fmt: skip
    return path


async def test_a_swapped_sensor_is_caught_by_drift_and_a_retrained_model_takes_over(swapped: Path) -> None:  # fmt: skip
    config = load_config(swapped)
    store = open_store(config.store, data_dir=config.data_dir)
    try:
        reg = TagRegistry(store.load_tags())
        watch = watch_of([MODEL], config, store, reg, trains=True)
        assert await watch.train_due(T0 + SWAP_H * H) == [f"watch/{FILLER}"]
        (w,) = watch.watches
        assert w.version.version == 1
        # before the swap's data: nothing drifted (a check needs half its window of new rows)
        early = check_drift(config, store, reg, RealClock(), MODEL, w.machine, w.version, T0 + SWAP_H * H + H, 0.2, DETECTORS)  # fmt: skip
        assert early.reason.startswith("too little data")
        # five hours after the swap: vibration has moved, by far the most
        (rep,) = await watch.check_drift(T0 + 10 * H)
        assert "vibration" in rep.drifted
        assert rep.psi["vibration"] > 10 * max(v for k, v in rep.psi.items() if k not in ("vibration", "score"))  # fmt: skip
        assert rep.new_mode_share == 0.0
        assert any("drifted: " in p and "vibration PSI" in p for p in watch.problems())
        assert [r.body["drifted"] for r in store.records(DRIFT_KIND)] == [rep.drifted]
        assert await watch.check_drift(T0 + 10 * H + 60 * 10**9) == []  # once an hour at most
        # drift trains a challenger at once (retrain_days is a week): trained on the hours
        # after the swap, it beats the champion on the newest hours neither saw
        assert await watch.train_due(T0 + 16 * H) == [f"watch/{FILLER}"]
        (w,) = watch.watches
        assert w.version.version == 2
        d = decisions(store, "watch")[-1]
        assert d.promoted, d.reason
        assert d.metric == "balanced_error"
        assert d.challenger_loss is not None
        assert d.champion_loss is not None
        assert d.challenger_loss < d.champion_loss
        assert d.ci_low is not None
        assert d.ci_low > 0
        assert d.groups >= MIN_GROUPS
        assert in_service(store, "watch", FILLER) == w.version
    finally:
        store.close()


def test_judge_promotes_only_a_real_and_large_enough_gain() -> None:
    v = ModelVersion("m", "a/b/c/d", 1, "pca", {}, [], [], 0, 0, 0, {}, {}, "", 0, "")
    c = ModelVersion("m", "a/b/c/d", 2, "pca", {}, [], [], 0, 0, 0, {}, {}, "", 0, "")
    g = np.repeat(np.arange(10), 20)
    rng = np.random.default_rng(3)
    base = rng.uniform(1, 2, size=200)

    def decide(a: np.ndarray, b: np.ndarray) -> tuple[bool, str]:
        d = judge("m", "a/b/c/d", v, c, "mae_h", (a, b, g, np.ones(200)), eval_from_ns=0, eval_to_ns=1, now_ns=2)  # fmt: skip
        return d.promoted, d.reason

    assert decide(base, base * 0.7)[0]  # 30 % better on every group
    kept, why = decide(base, base + rng.normal(0, 0.5, 200))  # noise
    assert not kept
    assert "not real" in why
    kept, why = decide(base, base * 0.995)  # real, but half a percent
    assert not kept
    assert "under the margin" in why
    few = judge("m", "a/b/c/d", v, c, "mae_h", (base[:60], base[:60] * 0.5, g[:60], np.ones(60)), eval_from_ns=0, eval_to_ns=1, now_ns=2)  # fmt: skip
    assert not few.promoted
    assert "3 lives or blocks" in few.reason
    assert psi(base, base) == 0.0
