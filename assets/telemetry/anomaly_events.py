"""Anomaly events: episodes of anomalous behaviour per stream, with start, peak, end and severity.

An episode is built from the points of one stream:

- *core* points score at least `CORE_SCORE` (0.5): the detector says "this is new";
- *elevated* points deviate from the baseline by at least `ELEVATED` noise units (the health `warn` level). The
  detector scores the onset of a change and then goes quiet while the new level persists, so elevated points
  carry an episode on: those up to `AFTER` (6 h) after a core point and up to `BEFORE` (1 h) before one (a ramp)
  belong to it. A benign level shift (a deploy) therefore makes an episode of at most 6 h, not days;
- kept points closer than the gap tolerance (30 min, or 2.5 × the stream's typical spacing if slower) are one
  episode; an episode needs at least one core point.

**Day partitions and midnight.** Partition D is computed from the scores of D - 1 and D (its *window*), and holds
every episode of that window that may not have been final at the end of D - 1: those ending at or after midnight
minus (gap + `BEFORE`). An episode crossing midnight thus appears in D - 1 with `status = open` and again in D
with its full extent (`closed` once no later point can extend it). `event_id` (host, metric, start) is the same in
both; readers keep the row of the latest partition. A range run computes every day's window separately (each
score row joins the windows of its day and the next day), so it gives exactly the day-by-day result. An episode
longer than a day is seen from its window's start (D - 1 00:00) by partition D.
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import polars as pl

from assets.telemetry import anomaly_scores as scores_module
from assets.telemetry.health_events import CRITICAL_DEVIATION, CRITICAL_SCORE, WARN_DEVIATION
from assets.telemetry.semantics import effective_deviation, finite, number, trusted_deviation
from intelligence import policy
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import DAILY, lookback, partition_days

CORE_SCORE = 0.5
ELEVATED = WARN_DEVIATION
GAP = dt.timedelta(minutes=30)
GAP_CADENCES = 2.5
BEFORE = dt.timedelta(hours=1)
AFTER = dt.timedelta(hours=6)
WINDOW = "_window"
AUTOMATION = policy.EAGER_ALLOWING_GAPS


class AnomalyEvent(dy.Schema):
    event_id = dy.String(primary_key=True, description="host|metric|start: the same in every partition.")
    host = dy.String(nullable=False)
    metric = dy.String(nullable=False)
    start = dy.Datetime(nullable=False, time_zone="UTC")
    peak = dy.Datetime(nullable=False, time_zone="UTC", description="Time of the highest anomaly score.")
    end = dy.Datetime(nullable=False, time_zone="UTC")
    status = dy.Enum(["open", "closed"], nullable=False, description="open: later points may still extend it.")
    points = dy.UInt32(nullable=False)
    core_points = dy.UInt32(nullable=False, description="Points scoring at least CORE_SCORE.")
    peak_score = number("Highest anomaly score.", nullable=False)
    peak_value = number("Value at the peak.", nullable=False)
    baseline = number("Expected value at the peak.")
    max_deviation = number("Largest deviation in noise units (signed; as health counts it: see severity).")
    direction = dy.Enum(["up", "down"], nullable=False)
    first_value = number(nullable=False)
    last_value = number(nullable=False)
    min_value = number(nullable=False)
    max_value = number(nullable=False)
    scale = number("Median noise scale of the stream during the episode.")
    reasons = dy.String(nullable=False, description="Detector components that fired, comma-separated.")
    severity = number("0..1: the peak score, or the deviation in units of twice the critical level.", nullable=False)
    severity_level = dy.Enum(["warn", "critical"], nullable=False)
    day = dy.Date(primary_key=True, description="The partition that reported this version of the episode.")

    @dy.rule()
    def ordered_in_time(cls) -> pl.Expr:
        return (pl.col("start") <= pl.col("peak")) & (pl.col("peak") <= pl.col("end"))

    @dy.rule()
    def finite_numbers(cls) -> pl.Expr:
        return finite(
            "peak_score", "peak_value", "baseline", "max_deviation", "first_value", "last_value", "severity"
        ) & pl.col("severity").is_between(0.0, 1.0)


CONTRACT = Contract(
    schema=AnomalyEvent,
    version="1.0.0",
    owner="team:sre",
    description="Anomalous episodes per stream (start, peak, end, severity), as known at the end of each day.",
)
SCHEMA = CONTRACT.polars_schema
_US = 1_000_000


def windowed(scores: pl.LazyFrame, days: list[dt.date]) -> pl.LazyFrame:
    """Each score row in the window of its own day and of the next day (those of `days` only)."""
    day = pl.col("timestamp").dt.date()
    base = conform(scores, scores_module.SCHEMA).select(
        "host",
        "metric",
        "timestamp",
        "value",
        "baseline",
        "scale",
        trusted_deviation().alias("deviation"),
        "anomaly_score",
        pl.col("reason").cast(pl.String),
    )
    same = base.with_columns(day.alias(WINDOW))
    after = base.with_columns((day + pl.duration(days=1)).alias(WINDOW))
    return pl.concat([same, after]).filter(pl.col(WINDOW).is_in(list(days)))


def find_episodes(scores: pl.LazyFrame | pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    """The episodes each of `days` reports, from scores covering `days` and the day before the first."""
    frame = scores.lazy() if isinstance(scores, pl.DataFrame) else scores
    rows = windowed(frame, days)
    stream = [WINDOW, "host", "metric"]
    spacing = (
        rows.sort(*stream, "timestamp")
        .group_by(stream)
        .agg(pl.col("timestamp").diff().dt.total_microseconds().median().alias("_spacing"))
        .with_columns(
            pl.max_horizontal(
                pl.lit(int(GAP.total_seconds() * _US)), (pl.col("_spacing") * GAP_CADENCES).fill_null(0)
            ).alias("_gap_us")
        )
        .select(*stream, "_gap_us")
    )
    horizon = rows.group_by(WINDOW).agg(pl.col("timestamp").max().alias("_horizon"))
    severity = effective_deviation(pl.col("deviation"))
    ts = pl.col("timestamp")
    candidates = (
        rows.with_columns(
            (pl.col("anomaly_score") >= CORE_SCORE).alias("_core"),
            severity.alias("_severity"),
        )
        .filter(pl.col("_core") | (pl.col("_severity") >= ELEVATED))
        .sort(*stream, "timestamp")
        .with_columns(
            pl.when(pl.col("_core")).then(ts).forward_fill().over(stream).alias("_last_core"),
            pl.when(pl.col("_core")).then(ts).backward_fill().over(stream).alias("_next_core"),
        )
        .filter(
            pl.col("_core")
            | ((ts - pl.col("_last_core")) <= AFTER).fill_null(False)
            | ((pl.col("_next_core") - ts) <= BEFORE).fill_null(False)
        )
        .join(spacing, on=stream, how="left")
        .with_columns(
            (ts.diff().dt.total_microseconds().over(stream).fill_null(0) > pl.col("_gap_us"))
            .cum_sum()
            .over(stream)
            .alias("_episode")
        )
    )
    by_score = pl.col("anomaly_score")
    episodes = (
        candidates.group_by(*stream, "_episode", maintain_order=True)
        .agg(
            ts.min().alias("start"),
            ts.sort_by(by_score, descending=True, maintain_order=True).first().alias("peak"),
            ts.max().alias("end"),
            pl.len().cast(pl.UInt32).alias("points"),
            pl.col("_core").sum().cast(pl.UInt32).alias("core_points"),
            by_score.max().alias("peak_score"),
            pl.col("value").sort_by(by_score, descending=True, maintain_order=True).first().alias("peak_value"),
            pl.col("baseline").sort_by(by_score, descending=True, maintain_order=True).first().alias("baseline"),
            pl.col("deviation")
            .sort_by(pl.col("_severity").fill_null(-1.0), descending=True, maintain_order=True)
            .first()
            .alias("_dev"),
            pl.col("_severity").max().alias("_max_severity"),
            pl.col("value").sort_by(ts).first().alias("first_value"),
            pl.col("value").sort_by(ts).last().alias("last_value"),
            pl.col("value").min().alias("min_value"),
            pl.col("value").max().alias("max_value"),
            pl.col("scale").median().alias("scale"),
            pl.col("reason").filter(pl.col("_core")).drop_nulls().unique().sort().str.join(",").alias("reasons"),
            pl.col("_gap_us").first().alias("_gap_us"),
        )
        .filter(pl.col("core_points") > 0)
        .join(horizon, on=WINDOW, how="left")
    )
    window_start = pl.col(WINDOW).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    settle = pl.duration(microseconds=pl.col("_gap_us")) + BEFORE
    up = (  # the sign of the largest deviation, else of the peak against its baseline
        pl.when(pl.col("_dev").is_not_null())
        .then(pl.col("_dev") >= 0)
        .otherwise(pl.col("baseline").is_null() | (pl.col("peak_value") >= pl.col("baseline")))
    )
    deviation_share = (pl.col("_max_severity").fill_null(0.0) / (2 * CRITICAL_DEVIATION)).clip(0.0, 1.0)
    result = (
        episodes.filter(pl.col("end") >= window_start - settle)  # D - 1 may not have seen these final
        .with_columns(
            pl.when(pl.col("_horizon") >= pl.col("end") + settle)
            .then(pl.lit("closed"))
            .otherwise(pl.lit("open"))
            .alias("status"),
            pl.format(
                "{}|{}|{}", pl.col("host"), pl.col("metric"), pl.col("start").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            ).alias("event_id"),
            pl.when(up).then(pl.lit("up")).otherwise(pl.lit("down")).alias("direction"),
            pl.max_horizontal(pl.col("peak_score"), deviation_share).alias("severity"),
            pl.when((pl.col("peak_score") >= CRITICAL_SCORE) | (pl.col("_max_severity") >= CRITICAL_DEVIATION))
            .then(pl.lit("critical"))
            .otherwise(pl.lit("warn"))
            .alias("severity_level"),
            pl.col("_dev").alias("max_deviation"),
            pl.col(WINDOW).alias("day"),
        )
        .select(list(SCHEMA))
        .sort("day", "host", "metric", "start")
        .collect()
    )
    return result.with_columns([pl.col(c).cast(SCHEMA[c]) for c in ("status", "direction", "severity_level")])


def latest_versions(events: pl.LazyFrame | pl.DataFrame, as_of: dt.date | None = None) -> pl.DataFrame:
    """One row per episode: the version of the latest partition (up to `as_of`)."""
    frame = events.lazy() if isinstance(events, pl.DataFrame) else events
    frame = conform(frame, SCHEMA)
    if as_of is not None:
        frame = frame.filter(pl.col("day") <= as_of)
    return frame.sort("day").group_by("event_id", maintain_order=True).last().sort("host", "metric", "start").collect()


@module(
    key=["telemetry", "anomaly_events"],
    contract=CONTRACT,
    partitions_def=DAILY,
    partition_column="day",
    automation_condition=AUTOMATION,
    ins={
        "anomaly_scores": dg.AssetIn(
            ["telemetry", "anomaly_scores"],
            partition_mapping=lookback(-1),
            metadata={"allow_missing_partitions": True},
        )
    },
)
def anomaly_events(
    context: dg.AssetExecutionContext, anomaly_scores: pl.LazyFrame
) -> tuple[pl.DataFrame, dict[str, object]]:
    """Anomalous episodes per stream: contiguous high scores merged with a gap tolerance; start, peak, end, severity."""
    events = find_episodes(anomaly_scores, partition_days(context))
    return events, {
        "episodes": events.height,
        "open_episodes": int((events["status"] == "open").sum()) if events.height else 0,
        "critical_episodes": int((events["severity_level"] == "critical").sum()) if events.height else 0,
        "core_score": CORE_SCORE,
        "gap_minutes": int(GAP.total_seconds() // 60),
    }
