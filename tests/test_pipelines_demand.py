"""The demand forecasting model code, on its own: plain functions, no doit, no Hydra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.pipelines import demand

DATA = {"start": "2024-01-01", "days": 120, "seed": 3, "holdout_days": 14}


def test_the_series_is_deterministic_and_each_day_stands_alone() -> None:
    long = demand.synthetic_hours("2024-01-01", 10, seed=5)
    again = demand.synthetic_hours("2024-01-01", 10, seed=5)
    one_day = demand.synthetic_hours("2024-01-07", 1, seed=5)
    pd.testing.assert_frame_equal(long, again)
    pd.testing.assert_frame_equal(long.iloc[144:168].reset_index(drop=True), one_day)
    assert not long.equals(demand.synthetic_hours("2024-01-01", 10, seed=6))
    assert len(long) == 240 and long["timestamp"].iloc[-1] == pd.Timestamp("2024-01-10 23:00")


def test_the_series_has_the_shape_of_electricity_demand() -> None:
    hours = demand.synthetic_hours("2024-01-01", 365, seed=1)
    by_hour = hours.groupby(hours["timestamp"].dt.hour)[demand.TARGET].mean()
    assert by_hour.idxmax() in range(17, 21) and by_hour.idxmin() in range(0, 6)
    winter = hours[hours["timestamp"].dt.month == 1]["temperature_c"].mean()
    summer = hours[hours["timestamp"].dt.month == 7]["temperature_c"].mean()
    assert summer > winter + 10


def test_features_have_the_same_columns_for_any_input() -> None:
    one = demand.make_features(demand.synthetic_hours("2024-03-01", 1, seed=1))
    many = demand.make_features(demand.synthetic_hours("2024-03-01", 9, seed=1))
    assert list(one.columns) == list(many.columns) and len(one.columns) == 30
    assert one.filter(like="hour_").to_numpy().sum() == 24


def test_score_on_known_values() -> None:
    assert demand.score(np.array([100.0, 200.0]), np.array([110.0, 170.0])) == {
        "mae": 20.0, "rmse": round(float(np.sqrt((100 + 900) / 2)), 3), "mape_pct": 12.5}


@pytest.mark.parametrize("train, params", [
    (demand.train_linear, {"alpha": 1.0}),
    (demand.train_boosted_trees, {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15, "random_state": 0}),
])
def test_steps_chain_and_models_beat_a_seasonal_naive_baseline(tmp_path: Path, train, params) -> None:
    features, model, metrics, forecast = (tmp_path / n for n in ("f.csv", "m.pkl", "m.json", "fc.csv"))
    demand.prepare({}, {"data": DATA}, {"features": features})
    train({"features": features}, params, {"model": model})
    demand.evaluate({"features": features, "model": model}, {}, {"metrics": metrics})
    demand.predict({"model": model}, {"date": "2024-06-01", "seed": 3}, {"forecast": forecast})
    scores = json.loads(metrics.read_text())
    table = pd.read_csv(features)
    holdout = table[table["split"] == "holdout"][demand.TARGET].to_numpy()
    week_before = table[demand.TARGET].to_numpy()[-len(holdout) - 168:-168]
    naive = demand.score(holdout, week_before)
    assert scores["holdout_hours"] == 14 * 24
    assert scores["mae"] < 0.8 * naive["mae"], (scores, naive)
    day = pd.read_csv(forecast)
    assert len(day) == 24 and day["timestamp"].iloc[0] == "2024-06-01 00:00:00"
    assert day["forecast_mw"].between(500, 2500).all()


@pytest.mark.parametrize(("holdout_days", "days"), [(120, 120), (200, 120), (0, 120)])
def test_prepare_refuses_a_holdout_that_leaves_nothing_to_train_on(tmp_path: Path, holdout_days: int,
                                                                   days: int) -> None:
    with pytest.raises(ValueError, match=rf"^data.holdout_days is {holdout_days}: it must be at least 1 and less "
                                         rf"than data.days \({days}\)"):
        demand.prepare({}, {"data": {**DATA, "days": days, "holdout_days": holdout_days}},
                       {"features": tmp_path / "f.csv"})


@pytest.mark.parametrize("alpha", ["abc", -5, True, None])
def test_train_linear_refuses_an_alpha_that_is_not_a_penalty(tmp_path: Path, alpha: object) -> None:
    with pytest.raises(ValueError, match=r"the ridge penalty must be a number, 0 or more"):
        demand.train_linear({"features": tmp_path / "f.csv"}, {"alpha": alpha}, {"model": tmp_path / "m.pkl"})
