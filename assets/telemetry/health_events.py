"""Health events: per stream and 15-minute interval, a normalised health state (ok / warn / critical).

Intervals are aligned to the UTC clock (00:00, 00:15, …), so one never crosses midnight and each day's partition
holds exactly its own intervals; a stream at a slower cadence gets one event per interval that has a point. The
state comes from two signals of the interval's points:

- the *deviation*: the median of the points' deviations from the detector's baseline, in noise units (the
  median, so one odd point does not flip the state; downward moves of up-is-bad metrics such as latency count
  0.3, as in the detector);
- the *anomaly score*: the largest of the interval.

`critical` if the deviation reaches 8 or the score 0.8; `warn` from 4 or 0.5; else `ok`. While a stream is
warming up (no history yet) the deviation is unknown and only the score decides.
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import polars as pl

from assets.telemetry import anomaly_scores as scores_module
from assets.telemetry.semantics import effective_deviation, finite, number, trusted_deviation
from intelligence import policy
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import DAILY

INTERVAL = dt.timedelta(minutes=15)
WARN_DEVIATION = 4.0
CRITICAL_DEVIATION = 8.0
WARN_SCORE = 0.5
CRITICAL_SCORE = 0.8
STATES = ["ok", "warn", "critical"]
AUTOMATION = policy.EAGER


class HealthEvent(dy.Schema):
    host = dy.String(primary_key=True)
    metric = dy.String(primary_key=True)
    interval_start = dy.Datetime(primary_key=True, time_zone="UTC")
    interval_end = dy.Datetime(nullable=False, time_zone="UTC")
    points = dy.UInt32(nullable=False)
    value = number("Mean value of the interval.", nullable=False)
    value_min = number(nullable=False)
    value_max = number(nullable=False)
    baseline = number("Median expected value of the interval (null while warming up).")
    deviation = number("Median deviation from the baseline in noise units (signed; null while warming up).")
    severity = number("Deviation as it counts for health (downward moves of up-is-bad metrics weigh 0.3).")
    anomaly_score = number("Largest anomaly score of the interval.", nullable=False)
    reason = dy.String(nullable=True, description="Detector component behind the largest score, if any.")
    state = dy.Enum(STATES, nullable=False)
    day = dy.Date(nullable=False)

    @dy.rule()
    def finite_numbers(cls) -> pl.Expr:
        return finite("value", "value_min", "value_max", "baseline", "deviation", "severity", "anomaly_score")


CONTRACT = Contract(
    schema=HealthEvent,
    version="1.0.0",
    owner="team:sre",
    description="Per stream and 15-minute interval: value, baseline, deviation and a health state.",
)
SCHEMA = CONTRACT.polars_schema


def health_state(severity: pl.Expr, score: pl.Expr) -> pl.Expr:
    sev = severity.fill_null(0.0)
    return (
        pl.when((sev >= CRITICAL_DEVIATION) | (score >= CRITICAL_SCORE))
        .then(pl.lit("critical"))
        .when((sev >= WARN_DEVIATION) | (score >= WARN_SCORE))
        .then(pl.lit("warn"))
        .otherwise(pl.lit("ok"))
    )


def build_health_events(scores: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Anomaly scores → one health event per stream and 15-minute interval with points."""
    frame = scores.lazy() if isinstance(scores, pl.DataFrame) else scores
    every = f"{int(INTERVAL.total_seconds())}s"
    events = (
        conform(frame, scores_module.SCHEMA)
        .with_columns(
            pl.col("timestamp").dt.truncate(every).alias("interval_start"),
            trusted_deviation().alias("_dev"),
        )
        .group_by("host", "metric", "interval_start", maintain_order=True)
        .agg(
            pl.len().cast(pl.UInt32).alias("points"),
            pl.col("value").mean().alias("value"),
            pl.col("value").min().alias("value_min"),
            pl.col("value").max().alias("value_max"),
            pl.col("baseline").median().alias("baseline"),
            pl.col("_dev").median().alias("deviation"),
            pl.col("anomaly_score").max().alias("anomaly_score"),
            pl.col("reason")
            .cast(pl.String)
            .sort_by("anomaly_score", descending=True, maintain_order=True)
            .first()
            .alias("reason"),
        )
        .with_columns(
            (pl.col("interval_start") + INTERVAL).alias("interval_end"),
            effective_deviation(pl.col("deviation")).alias("severity"),
            pl.col("interval_start").dt.date().alias("day"),
        )
        .with_columns(
            health_state(pl.col("severity"), pl.col("anomaly_score")).alias("state"),
            pl.when(pl.col("anomaly_score") > 0).then(pl.col("reason")).alias("reason"),
        )
        .select(list(SCHEMA))
        .sort("host", "metric", "interval_start")
        .collect()
    )
    return events.with_columns(pl.col("state").cast(SCHEMA["state"]))


@module(
    key=["telemetry", "health_events"],
    contract=CONTRACT,
    partitions_def=DAILY,
    partition_column="day",
    automation_condition=AUTOMATION,
    ins={"anomaly_scores": dg.AssetIn(["telemetry", "anomaly_scores"])},
)
def health_events(anomaly_scores: pl.LazyFrame) -> tuple[pl.DataFrame, dict[str, object]]:
    """Per stream and 15-minute interval: value, baseline, deviation and a health state (ok / warn / critical)."""
    events = build_health_events(anomaly_scores)
    counts = dict(events.group_by("state").len().iter_rows()) if events.height else {}
    return events, {
        "interval_minutes": int(INTERVAL.total_seconds() // 60),
        **{f"intervals_{s}": int(counts.get(s, 0)) for s in STATES},
    }
