"""Day-ahead electricity demand: a synthetic hourly series, its features, two models, metrics, forecasts.

Step functions take `inputs` (paths), `params` (their own config section, as plain values)
and `outputs` (paths to write). The pure functions below them do the modelling.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

TARGET = "demand_mw"
HEATING_BELOW_C = 15.0
COOLING_ABOVE_C = 22.0


def synthetic_hours(start: str, days: int, seed: int, progress: Any = None) -> pd.DataFrame:
    """Return hourly temperature and demand for `days` days from `start`; each day depends only on seed and date.

    `progress`, if given, is told each day made (`progress.update(done, total, note)`)."""
    first = pd.Timestamp(start)
    daily = []
    for offset in range(days):
        daily.append(_synthetic_day(first + pd.Timedelta(days=offset), seed))
        if progress is not None:
            progress.update(offset + 1, days, "days of series")
    return pd.DataFrame({
        "timestamp": pd.date_range(first, periods=24 * days, freq="h"),
        "temperature_c": np.concatenate([temperature for temperature, _ in daily]) if daily else [],
        TARGET: np.concatenate([demand for _, demand in daily]) if daily else [],
    })


def _synthetic_day(day: pd.Timestamp, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, day.toordinal()])
    hours = np.arange(24)
    season = math.sin(2 * math.pi * (day.day_of_year - 110) / 365.25)
    weather = rng.normal(0.0, 3.0)  # the day's deviation from the seasonal norm
    temperature = 11 + 11 * season + weather + 4.5 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 0.8, 24)
    profile = 180 * np.exp(-((hours - 8.5) ** 2) / 6) + 260 * np.exp(-((hours - 19) ** 2) / 8) - 150 * (hours < 6)
    weekend = 0.86 if day.day_of_week >= 5 else 1.0
    heating = 28 * np.clip(HEATING_BELOW_C - temperature, 0, None)
    cooling = 35 * np.clip(temperature - COOLING_ABOVE_C, 0, None)
    demand = (1000 + profile) * weekend + heating + cooling + rng.normal(0, 25, 24)
    return temperature.round(2), demand.round(1)


def make_features(hours: pd.DataFrame) -> pd.DataFrame:
    """Return calendar and temperature features for each hour (the same columns for any input)."""
    stamp = pd.to_datetime(hours["timestamp"])
    temperature = hours["temperature_c"]
    features = pd.DataFrame({
        "temperature_c": temperature,
        "heating_degrees": np.clip(HEATING_BELOW_C - temperature, 0, None),
        "cooling_degrees": np.clip(temperature - COOLING_ABOVE_C, 0, None),
        "weekend": (stamp.dt.day_of_week >= 5).astype(int),
        "year_sin": np.sin(2 * np.pi * stamp.dt.day_of_year / 365.25),
        "year_cos": np.cos(2 * np.pi * stamp.dt.day_of_year / 365.25),
    })
    for hour in range(24):
        features[f"hour_{hour:02d}"] = (stamp.dt.hour == hour).astype(int)
    return features


def fit_ridge(features: pd.DataFrame, target: pd.Series, alpha: float) -> Ridge:
    """Fit a ridge regression."""
    from sklearn.linear_model import Ridge  # scikit-learn takes a second to import: only where a model is fit

    return Ridge(alpha=alpha).fit(features, target)


def fit_boosted_trees(features: pd.DataFrame, target: pd.Series,
                      params: Mapping[str, Any]) -> HistGradientBoostingRegressor:
    """Fit a histogram gradient-boosted tree ensemble."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(
        max_iter=int(params["max_iter"]),
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        random_state=int(params["random_state"]),
    )
    return model.fit(features, target)


def score(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Return MAE, RMSE and MAPE (%) of a forecast."""
    error = np.asarray(predicted) - np.asarray(actual)
    return {
        "mae": round(float(np.mean(np.abs(error))), 3),
        "rmse": round(float(np.sqrt(np.mean(error ** 2))), 3),
        "mape_pct": round(float(np.mean(np.abs(error) / np.asarray(actual)) * 100), 3),
    }


# Step functions -----------------------------------------------------------------------------------

def prepare(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path],
            progress: Any = None) -> None:
    """Write the features and target of the series, the last holdout_days marked as holdout (reporting
    its progress, day by day, to the runner's `progress` when it hands one)."""
    data = params["data"]
    days, holdout_days = int(data["days"]), int(data["holdout_days"])
    if not 0 < holdout_days < days:
        raise ValueError(f"data.holdout_days is {holdout_days}: it must be at least 1 and less than "
                         f"data.days ({days}), so that some days are left to train on")
    hours = synthetic_hours(str(data["start"]), days, int(data["seed"]), progress)
    table = make_features(hours)
    table.insert(0, "timestamp", hours["timestamp"])
    table[TARGET] = hours[TARGET]
    holdout_rows = holdout_days * 24
    table["split"] = ["train"] * (len(table) - holdout_rows) + ["holdout"] * holdout_rows
    table.to_csv(outputs["features"], index=False)


def train_linear(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Fit a ridge regression on the training rows and save it."""
    alpha = params["alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0:
        raise ValueError(f"alpha is {alpha!r}: the ridge penalty must be a number, 0 or more (such as 1.0)")
    features, target = _split(inputs["features"], "train")
    _save_model(fit_ridge(features, target, float(alpha)), list(features.columns), outputs["model"])


def train_boosted_trees(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Fit a gradient-boosted tree ensemble on the training rows and save it."""
    features, target = _split(inputs["features"], "train")
    _save_model(fit_boosted_trees(features, target, params), list(features.columns), outputs["model"])


def evaluate(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Write the model's MAE, RMSE and MAPE on the holdout rows as JSON."""
    features, target = _split(inputs["features"], "holdout")
    model = _load_model(inputs["model"])
    metrics = score(target.to_numpy(), model["estimator"].predict(features[model["columns"]]))
    metrics["holdout_hours"] = len(target)
    Path(outputs["metrics"]).write_text(json.dumps(metrics, indent=2) + "\n")


def error_by_hour(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Write the model's holdout MAE for each hour of the day as JSON: where in the day it is weakest."""
    table = pd.read_csv(inputs["features"], parse_dates=["timestamp"])
    holdout = table[table["split"] == "holdout"]
    model = _load_model(inputs["model"])
    errors = (holdout[TARGET] - model["estimator"].predict(holdout[model["columns"]])).abs()
    by_hour = errors.groupby(holdout["timestamp"].dt.hour).mean().round(3)
    Path(outputs["report"]).write_text(json.dumps({str(hour): mae for hour, mae in by_hour.items()}, indent=2) + "\n")


def predict(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Write the hourly demand forecast of params['date'] from that day's temperature forecast."""
    day = synthetic_hours(str(params["date"]), 1, int(params["seed"]))
    model = _load_model(inputs["model"])
    features = make_features(day)[model["columns"]]
    forecast = pd.DataFrame({
        "timestamp": day["timestamp"],
        "temperature_c": day["temperature_c"],
        "forecast_mw": model["estimator"].predict(features).round(1),
    })
    forecast.to_csv(outputs["forecast"], index=False)


def _split(path: Path, split: str) -> tuple[pd.DataFrame, pd.Series]:
    table = pd.read_csv(path)
    rows = table[table["split"] == split]
    return rows.drop(columns=["timestamp", TARGET, "split"]), rows[TARGET]


def _save_model(estimator: Any, columns: list[str], path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump({"estimator": estimator, "columns": columns}, handle)


def _load_model(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return pickle.load(handle)
