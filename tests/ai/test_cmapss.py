"""``genba ai evaluate cmapss``: NASA's C-MAPSS by the usual protocol — units, never rows,
between fit and check; the capped target; NASA's score; the test-set path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from genba.ai._cmapss import (  # fmt: skip
    CAP,
    Features,
    Units,
    _trailing,
    evaluate_cmapss,
    nasa_score,
    read,
    rmse,
    rul_of,
)
from genba.cli import cli
from tests.ai.test_skab import SHARED

CMAPSS = SHARED / "cmapss"
needs_data = pytest.mark.skipif(not (CMAPSS / "train_FD001.txt.gz").is_file(), reason=f"C-MAPSS is not at {CMAPSS} (GENBA_SHARED_DATA)")  # fmt: skip


def test_nasa_score_punishes_late_predictions_more() -> None:
    true = np.array([50.0, 50.0])
    early, late = np.array([40.0, 50.0]), np.array([60.0, 50.0])
    assert nasa_score(early, true) == pytest.approx(np.exp(10 / 13) - 1)
    assert nasa_score(late, true) == pytest.approx(np.exp(1.0) - 1)
    assert nasa_score(late, true) > nasa_score(early, true)
    assert rmse(late, true) == pytest.approx(np.sqrt(50.0))


def test_rul_and_trailing_features_by_hand() -> None:
    unit = np.array([1, 1, 1, 2, 2])
    cycle = np.array([1, 2, 3, 1, 2])
    assert rul_of(Units(unit, cycle, np.zeros((5, 3)), np.zeros((5, 21)))).tolist() == [
        2,
        1,
        0,
        1,
        0,
    ]
    z = np.array([[1.0], [3.0], [8.0], [10.0], [20.0]])
    assert _trailing(z, unit, 2, "mean")[:, 0].tolist() == [1.0, 2.0, 5.5, 10.0, 15.0]
    # slope per cycle over the last 3 rows: never across units
    assert _trailing(z, unit, 3, "slope")[:, 0].tolist() == pytest.approx([0.0, 2.0, 3.5, 0.0, 10.0])  # fmt: skip


def test_conditions_normalise_each_sensor_in_its_own_flight_condition() -> None:
    rng = np.random.default_rng(0)
    n = 600
    settings = np.where(rng.random((n, 1)) < 0.5, [[42.0, 0.84, 100.0]], [[0.0, 0.0, 100.0]])
    sensors = rng.normal(0, 1, (n, 21)) + np.where(
        settings[:, :1] > 0, 500.0, 0.0
    )  # one level per condition
    sensors[:, 4] = 7.0  # constant everywhere: left out
    u = Units(np.repeat(np.arange(6), 100), np.tile(np.arange(1, 101), 6), settings + rng.normal(0, 1e-4, (n, 3)), sensors)  # fmt: skip
    f = Features(u)
    assert len(f.conditions) == 2
    assert f.keep.sum() == 20
    x = f(u)[:, :20]
    assert abs(x.mean()) < 0.05
    assert x.std() == pytest.approx(1.0, abs=0.05)  # not 250: the conditions' levels are gone


@needs_data
def test_cross_validation_holds_out_units_and_beats_a_constant(tmp_path: Path) -> None:
    got = evaluate_cmapss(CMAPSS, ["FD001"], tune=False)  # the settings' choice: below
    (r,) = got
    assert (r.protocol, r.units, r.predictions) == ("held-out units", 100, 500)
    train = read(CMAPSS / "train_FD001.txt.gz")
    # a constant prediction, the capped mean RUL, on the same protocol's truth, is far worse
    y = np.minimum(rul_of(train), CAP).astype(np.float64)
    assert r.rmse < 0.45 * float(y.std())
    assert len(r.fold_rmse) == 5
    assert r.rmse_uncapped > r.rmse  # early cuts: the truth past 125 is not observable


@needs_data
def test_the_settings_are_chosen_by_cross_validation_inside_each_folds_training_units() -> None:
    from genba.ai._cmapss import GRID, Units, validate

    full = read(CMAPSS / "train_FD001.txt.gz")
    rows = full.unit <= 30  # thirty units: the nested loops' cost, not its logic, shrinks
    train = Units(full.unit[rows], full.cycle[rows], full.settings[rows], full.sensors[rows])
    r = validate(train, "FD001", tune=True)
    assert len(r.chosen) == 5  # one choice per outer fold, made without its held-out units
    assert all(c in GRID for c in r.chosen)
    assert r.rmse < 20


@needs_data
def test_a_test_set_is_scored_at_each_units_last_cycle(tmp_path: Path) -> None:
    """The official layout, built from training units 81-100 cut short: test_FD001 holds
    their first cycles, RUL_FD001 the cycles each had left."""
    train = read(CMAPSS / "train_FD001.txt.gz")
    rng = np.random.default_rng(1)
    keep, test_rows, truth = train.unit <= 80, [], []
    for un in range(81, 101):
        rows = np.flatnonzero(train.unit == un)
        cut = int(rng.integers(30, len(rows)))
        test_rows.append(rows[:cut])
        truth.append(len(rows) - cut)

    def cols(rows: np.ndarray) -> np.ndarray:
        return np.column_stack([train.unit[rows], train.cycle[rows], train.settings[rows], train.sensors[rows]])  # fmt: skip

    np.savetxt(tmp_path / "train_FD001.txt", cols(np.flatnonzero(keep)), fmt="%.6g")
    np.savetxt(tmp_path / "test_FD001.txt", cols(np.concatenate(test_rows)), fmt="%.6g")
    with gzip.open(tmp_path / "RUL_FD001.txt.gz", "wt") as f:
        f.write("\n".join(str(t) for t in truth) + "\n")
    r = CliRunner().invoke(cli, ["ai", "evaluate", "cmapss", "--data", str(tmp_path), "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    (got,) = json.loads(r.output)
    assert (got["subset"], got["protocol"], got["units"]) == ("FD001", "test", 20)
    assert got["rmse"] < 25
    bad = CliRunner().invoke(cli, ["ai", "evaluate", "cmapss", "--data", str(tmp_path), "--subset", "FD002"])  # fmt: skip
    assert bad.exit_code == 1
    assert "no train_FD002.txt(.gz)" in bad.output
