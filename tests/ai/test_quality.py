"""Quality prediction: reject-rate windows from the historian, and the surrogate judged
against the simulator's exact reject probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genba.ai._quality import INPUTS, QualityModel, quality_windows
from genba.ai._qualitysim import evaluate_quality
from genba.config import StoreSettings
from genba.errors import ModelError
from genba.historian import TimeRange, open_store
from genba.tags import TagRegistry
from genba.types import SampleBatch, TagSpec

pytest.importorskip(
    "sklearn", reason="the quality model is fitted with scikit-learn (the ml extra)"
)

T0 = 1_767_571_200 * 10**9
M = "site/area/line/press"


def test_windows_count_parts_per_window_and_drop_a_counter_reset(tmp_path: Path) -> None:
    store = open_store(StoreSettings(), data_dir=tmp_path)
    try:
        reg = TagRegistry()
        names = ["state", "good_count", "reject_count", *INPUTS]
        tags = reg.ensure([TagSpec(f"{M}/{n}", "1", "") for n in names])
        store.save_tags(tags)
        t = T0 + np.arange(0, 3600 * 10**9, 60 * 10**9)  # an hour, a row a minute
        n = len(t)
        good = np.arange(n) * 10.0  # 10 good parts a minute
        bad = np.arange(n) * 1.0  # and one reject
        good[40:] -= good[40]  # the PLC restarted: the counter starts again
        cols = [np.ones(n), good, bad, np.full(n, 40.0), np.full(n, 85.0), np.full(n, 39.5), np.full(n, 84.0)]  # fmt: skip
        for tag, v in zip(tags, cols, strict=True):
            store.append(SampleBatch.from_columns(tag_ids=np.full(n, tag.id, dtype=np.int32), ts_ns=t, values=v))  # fmt: skip
        w = quality_windows(store, reg, M, TimeRange(T0, T0 + 3600 * 10**9))
        # four 15-minute windows; the third holds the reset: dropped, counted
        assert w.dropped_resets == 1
        assert len(w.t_ns) == 3
        assert w.parts.tolist() == [14 * 11.0] * 3  # 14 one-minute steps in a window's rows
        assert w.rate.tolist() == pytest.approx([1 / 11] * 3)
        assert w.x[0].tolist() == [40.0, 85.0, 39.5, 84.0]
        with pytest.raises(ModelError, match="too few running windows"):
            QualityModel().fit(w)
    finally:
        store.close()


def test_the_surrogate_is_close_where_the_plant_ran_and_less_sure_where_it_did_not() -> None:
    r = evaluate_quality(seeds=[5], days=4).to_json()["groups"]
    seen, unseen = r["visited"], r["unvisited"]
    assert seen["windows"] > 20
    assert unseen["windows"] > 20
    assert seen["mae_pp"] < 2.0  # percentage points of reject rate
    # calibrated where it ran: the mean predicted rate near the mean observed one
    assert abs(seen["mean_predicted_pct"] - seen["mean_observed_pct"]) < 1.0
    # off the visited box it is further off: the figure that says not to trust it there
    assert unseen["mae_pp"] > seen["mae_pp"]
