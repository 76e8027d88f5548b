"""Anomaly scores: every point of the day scored by the causal detector ensemble (`detectors.score_points`).

The detector's score at t depends only on points of the same stream in `(t - LOOKBACK, t]` (14 days), so a
partition reads the points of its days and the 14 days before (`lookback(-14)`), scores them in one call and
keeps its own days. A range run (single-run backfill) scores the whole range plus the lookback once, not once
per day, and gives bit-for-bit the scores of day-by-day runs.
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import polars as pl

from assets.telemetry import points as points_module
from assets.telemetry.detectors import COMPONENTS, LOOKBACK, score_points
from intelligence import policy
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import DAILY, lookback, partition_days

AUTOMATION = policy.EAGER_ALLOWING_GAPS


def _feature(description: str) -> dy.Float64:
    # The detector's features are checked together by one rule (`features_valid`); per-column nan/inf rules
    # would add three checks per column to every run.
    return dy.Float64(nullable=True, allow_inf=True, allow_nan=True, description=description)


class AnomalyScore(dy.Schema):
    host = dy.String(primary_key=True)
    metric = dy.String(primary_key=True)
    timestamp = dy.Datetime(primary_key=True, time_zone="UTC")
    value = dy.Float64(nullable=False)
    baseline = _feature("Expected value (seasonal baseline, else the median of the previous points).")
    deviation = _feature("(value - baseline) in units of the noise scale.")
    scale = _feature("Noise scale of the stream at this hour.")
    score_spike = _feature("Calibrated component score: sudden move against the recent median.")
    score_level = _feature("Calibrated component score: confirmed change point.")
    score_seasonal = _feature("Calibrated component score: against the seasonal baseline.")
    score_sustained = _feature("Calibrated component score: persisting shift.")
    score_range = _feature("Calibrated component score: beyond last week's range.")
    score_volatility = _feature("Calibrated component score: noise burst.")
    score_flatline = _feature("Calibrated component score: stuck value.")
    score_gap = _feature("Calibrated component score: missing data.")
    reason = dy.Enum(list(COMPONENTS), nullable=True, description="The component behind the score (null at 0).")
    anomaly_score = dy.Float64(nullable=False, description="Calibrated, causal score in [0, 1].")
    day = dy.Date(nullable=False)

    @dy.rule()
    def features_valid(cls) -> pl.Expr:
        scores = [f"score_{c}" for c in COMPONENTS] + ["anomaly_score"]
        in_unit = [pl.col(c).is_between(0.0, 1.0).fill_null(False) for c in scores]
        finite = [pl.col(c).is_finite().fill_null(True) for c in ("baseline", "deviation", "scale")]
        return pl.all_horizontal([*in_unit, *finite])


CONTRACT = Contract(
    schema=AnomalyScore,
    version="1.0.0",
    owner="team:sre",
    description="One row per point with its causal anomaly score in [0, 1] and the features behind it.",
)
SCHEMA = CONTRACT.polars_schema


def score_days(points: pl.LazyFrame, days: list[dt.date]) -> pl.DataFrame:
    """Score the points of `days`, given (at least) the points of the LOOKBACK before them."""
    first = dt.datetime.combine(min(days), dt.time(), tzinfo=dt.UTC) - LOOKBACK
    end = dt.datetime.combine(max(days), dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    frame = (
        conform(points, points_module.SCHEMA)
        .select("host", "metric", "timestamp", "value")
        .filter(pl.col("timestamp").is_between(first, end, closed="left"))  # the days and their lookback only
        .sort("host", "metric", "timestamp")  # sorted once here: the detector then keeps this order
        .collect()
    )
    scored = score_points(frame)
    day = pl.col("timestamp").dt.date()
    contiguous = len(set(days)) == (max(days) - min(days)).days + 1
    wanted = day.is_between(min(days), max(days)) if contiguous else day.is_in(sorted(set(days)))
    return (
        scored.filter(wanted)
        .with_columns(day.alias("day"), pl.col("reason").cast(SCHEMA["reason"]))
        .select(list(SCHEMA))
    )


@module(
    key=["telemetry", "anomaly_scores"],
    contract=CONTRACT,
    partitions_def=DAILY,
    partition_column="day",
    automation_condition=AUTOMATION,
    ins={
        "points": dg.AssetIn(
            ["telemetry", "points"],
            partition_mapping=lookback(-LOOKBACK.days),
            metadata={"allow_missing_partitions": True},
        )
    },
)
def anomaly_scores(context: dg.AssetExecutionContext, points: pl.LazyFrame) -> tuple[pl.DataFrame, dict[str, object]]:
    """Every point of the day with its causal anomaly score (detector ensemble, 14-day bounded lookback)."""
    days = partition_days(context)
    scored = score_days(points, days)
    alerts = scored.filter(pl.col("anomaly_score") >= 0.5)
    return scored, {
        "lookback_days": LOOKBACK.days,
        "streams": scored.select("host", "metric").n_unique() if scored.height else 0,
        "points_scored": scored.height,
        "points_above_0_5": alerts.height,
        "max_score": float(scored.select(pl.col("anomaly_score").max().fill_null(0.0)).item()),
    }
