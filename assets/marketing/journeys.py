"""Journeys: per person, the touches before each conversion within a lookback window.

A conversion closes its journey: the next one starts fresh after it. Touches older than the lookback
(default 30 days) before the conversion are not part of it. Touches after a person's last conversion
that are not followed by one by the end of the month form a non-converting journey (a "null"),
which Markov attribution needs; it belongs to the month of its last touch.

Monthly partitions. A conversion early in a month reaches back into the previous months, so the
asset reads the daily touchpoints of the month and `HISTORY_MONTHS` before it, and re-resolves every
touch's person with the identity of this month (people merge as the data links them).

A conversion without any touch in its lookback gets one pseudo-touch on channel `(none)` at the
conversion time, so every conversion is credited somewhere.
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import polars as pl

from assets.marketing import touchpoints as touchpoints_module
from assets.marketing.identity import HISTORY_MONTHS
from intelligence.contracts import Contract
from intelligence.frames import conform
from intelligence.modules import module
from intelligence.partitions import MONTHLY, lookback, next_month, partition_months

NO_TOUCH = "(none)"
MAX_LOOKBACK_DAYS = 28 * HISTORY_MONTHS


class JourneyConfig(dg.Config):
    """How far back a conversion looks for the touches that led to it."""

    lookback_days: int = 30


class JourneyTouch(dy.Schema):
    journey_id = dy.String(primary_key=True)
    touch_index = dy.UInt32(primary_key=True, description="Position of the touch in its journey, from 0.")
    person_id = dy.String(nullable=False)
    ts = dy.Datetime(nullable=False, time_zone="UTC")
    channel = dy.String(nullable=False)
    campaign = dy.String(nullable=True)
    cost = dy.Float64(nullable=False, min=0)
    converted = dy.Bool(nullable=False)
    conversions = dy.Float64(nullable=False, min=0)
    value = dy.Float64(nullable=False, min=0)
    nulls = dy.Float64(nullable=False, min=0)
    conversion_ts = dy.Datetime(nullable=True, time_zone="UTC")
    month = dy.Date(nullable=False)

    @dy.rule()
    def conversion_after_touch(cls) -> pl.Expr:
        return pl.col("conversion_ts").is_null() | (pl.col("ts") <= pl.col("conversion_ts"))

    @dy.rule()
    def converted_or_null(cls) -> pl.Expr:
        return (pl.col("conversions") > 0) | (pl.col("nulls") > 0)


CONTRACT = Contract(
    schema=JourneyTouch,
    version="1.0.0",
    owner="team:analytics",
    description="One row per touch of each journey (converting or not) of a month.",
)

OUTPUT_SCHEMA = {name: col.dtype for name, col in JourneyTouch.columns().items()}


def build_journeys(
    touchpoints: pl.LazyFrame, identity: pl.LazyFrame, month: dt.date, lookback_days: int
) -> pl.DataFrame:
    """The journeys of `month` from the touchpoints of the month and the months before it."""
    if not 0 < lookback_days <= MAX_LOOKBACK_DAYS:
        raise ValueError(f"lookback_days must be between 1 and {MAX_LOOKBACK_DAYS}, got {lookback_days}")
    start = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(next_month(month), dt.time(), tzinfo=dt.UTC)
    lookback = dt.timedelta(days=lookback_days)
    people = identity.filter(pl.col("month") == month).select("identifier", pl.col("person_id").alias("_person"))
    events = (
        touchpoints.filter(pl.col("ts") < end)
        .join(people, on="identifier", how="left")
        .select(
            pl.coalesce("_person", "person_id").alias("person_id"),
            "ts",
            pl.col("channel").cast(pl.String),
            "campaign",
            "cost",
            "is_conversion",
            pl.col("conversion_value").fill_null(0.0),
            "event_key",
        )
        .sort("person_id", "ts", "is_conversion", "event_key")  # a touch at the conversion instant counts
        .with_columns(
            (pl.col("is_conversion").cast(pl.UInt32).cum_sum() - pl.col("is_conversion").cast(pl.UInt32))
            .over("person_id")
            .alias("_segment")
        )
        .collect()
    )
    conversions = events.filter(pl.col("is_conversion")).select(
        "person_id",
        "_segment",
        pl.col("ts").alias("conversion_ts"),
        pl.col("conversion_value").alias("value"),
        "event_key",
    )
    touches = events.filter(~pl.col("is_conversion")).drop("is_conversion", "conversion_value", "event_key")

    converting = (
        conversions.filter((pl.col("conversion_ts") >= start) & (pl.col("conversion_ts") < end))
        .join(touches, on=["person_id", "_segment"], how="left")
        .filter(pl.col("ts").is_null() | (pl.col("ts") >= pl.col("conversion_ts") - lookback))
        .with_columns(
            pl.col("channel").fill_null(NO_TOUCH),
            pl.col("ts").fill_null(pl.col("conversion_ts")),
            pl.col("cost").fill_null(0.0),
            pl.lit(True).alias("converted"),
            pl.lit(1.0).alias("conversions"),
            pl.lit(0.0).alias("nulls"),
            (pl.col("person_id") + "|" + pl.col("event_key")).alias("journey_id"),
        )
    )
    closed = conversions.select("person_id", "_segment")
    tail = touches.join(closed, on=["person_id", "_segment"], how="anti")
    open_journeys = (
        tail.with_columns(pl.col("ts").max().over("person_id", "_segment").alias("_last"))
        .filter((pl.col("_last") >= start) & (pl.col("_last") < end) & (pl.col("ts") >= pl.col("_last") - lookback))
        .with_columns(
            pl.lit(None, pl.Datetime("us", "UTC")).alias("conversion_ts"),
            pl.lit(0.0).alias("value"),
            pl.lit(False).alias("converted"),
            pl.lit(0.0).alias("conversions"),
            pl.lit(1.0).alias("nulls"),
            (pl.col("person_id") + "|open|" + pl.col("_last").dt.to_string("%Y-%m-%dT%H:%M:%S%.f")).alias("journey_id"),
        )
    )
    columns = [c for c in OUTPUT_SCHEMA if c not in ("touch_index", "month")]
    journeys = pl.concat([converting.select(columns), open_journeys.select(columns)], how="vertical_relaxed")
    return (
        journeys.sort("journey_id", "ts")
        .with_columns(
            pl.int_range(pl.len(), dtype=pl.UInt32).over("journey_id").alias("touch_index"),
            pl.lit(month).alias("month"),
        )
        .select(list(OUTPUT_SCHEMA))
    )


@module(
    key=["marketing", "journeys"],
    contract=CONTRACT,
    partitions_def=MONTHLY,
    partition_column="month",
    ins={
        "touchpoints": dg.AssetIn(
            ["marketing", "touchpoints"],
            partition_mapping=lookback(-HISTORY_MONTHS),
            metadata={"allow_missing_partitions": True},
        ),
        "identity": dg.AssetIn(["marketing", "identity"]),
    },
)
def journeys(
    context: dg.AssetExecutionContext, touchpoints: pl.LazyFrame, identity: pl.LazyFrame, config: JourneyConfig
) -> tuple[pl.DataFrame, dict[str, object]]:
    """Per person, the touches before each conversion within the lookback; non-converting journeys kept as nulls."""
    touchpoints = conform(touchpoints, touchpoints_module.CONTRACT.polars_schema)
    frames = [build_journeys(touchpoints, identity, month, config.lookback_days) for month in partition_months(context)]
    result = pl.concat(frames)
    converting = result.filter(pl.col("converted"))["journey_id"].n_unique()
    return result, {
        "lookback_days": config.lookback_days,
        "converting_journeys": converting,
        "non_converting_journeys": result["journey_id"].n_unique() - converting,
    }
