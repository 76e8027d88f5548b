"""Attribution: each month's conversions and conversion value credited to channels, by eight models.

The models are the pure functions of `attribution_models`; this module picks the month's journeys and
the run's choices (models, time-decay half-life, position weights), editable in the UI launchpad.
"""

import dagster as dg
import dataframely as dy
import polars as pl

from assets.marketing.attribution_models import MODELS, attribute_touches
from intelligence.contracts import Contract
from intelligence.modules import module
from intelligence.partitions import MONTHLY, partition_months


class AttributionConfig(dg.Config):
    """Which models to run and their parameters (defaults: all models, 7-day half-life, 40/20/40)."""

    models: list[str] = list(MODELS)  # noqa: RUF012 (pydantic copies field defaults)
    half_life_days: float = 7.0
    first_touch_weight: float = 0.4
    last_touch_weight: float = 0.4


class ChannelCredit(dy.Schema):
    month = dy.Date(primary_key=True)
    model = dy.Enum(list(MODELS), primary_key=True)
    channel = dy.String(primary_key=True)
    conversions = dy.Float64(nullable=False, min=0)
    value = dy.Float64(nullable=False, min=0)


CONTRACT = Contract(
    schema=ChannelCredit,
    version="1.0.0",
    owner="team:analytics",
    description="Conversions and value credited to each channel by each model, per month.",
)


def attribute_month(journeys: pl.DataFrame | pl.LazyFrame, config: AttributionConfig) -> pl.DataFrame:
    """Credit one month's journeys with every model asked; credits sum to the month's totals."""
    lazy = journeys.lazy()
    # Only journeys that can change a credit go to the models: those with conversions or value, and with
    # nulls for Markov. `attribute_touches` keeps exactly these, but filtering here, in the scan, spares
    # reading, grouping and handing over the touches of every other journey (most of them: non-converting).
    # null weights pass the filter, so that `attribute_touches` refuses them with its clear error
    counts = (pl.col("conversions") != 0).fill_null(True) | (pl.col("value") != 0).fill_null(True)
    if "markov" in config.models:
        counts = counts | (pl.col("nulls") != 0).fill_null(True)
    touches, channels = pl.collect_all(
        [
            lazy.filter(counts).select("journey_id", "ts", "channel", "conversions", "value", "nulls", "conversion_ts"),
            lazy.select(pl.col("channel").cast(pl.String).unique().sort()),
        ]
    )
    touches, per_journey = _split_journeys(touches)
    credit = attribute_touches(
        touches,
        per_journey,
        models=config.models,
        half_life_days=config.half_life_days,
        first=config.first_touch_weight,
        last=config.last_touch_weight,
    )
    return _every_channel(credit, config.models, channels.to_series())


def _split_journeys(touches: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Touch rows (journey_id, ts, channel) and one row per journey (journey_id and its weights).

    The journeys module writes its rows sorted by journey_id, so each journey is one run of rows: then the
    run number is the journey's id and its first row gives the weights, in two linear passes, instead of
    grouping millions of string ids (about 3 s on 10M touches) and joining on them again in the models.
    """
    weights = pl.col("conversions", "value", "nulls", "conversion_ts")
    ids = touches.get_column("journey_id")
    if ids.null_count() or not ids.is_sorted():
        per_journey = touches.group_by("journey_id").agg(weights.first())
        return touches.select("journey_id", "ts", "channel"), per_journey
    run = ids.rle_id().cast(pl.Int64).alias("journey_id")
    numbered = touches.select(run, "ts", "channel", weights)
    first = pl.col("journey_id") != pl.col("journey_id").shift(1, fill_value=-1)
    return numbered.select("journey_id", "ts", "channel"), numbered.filter(first).select("journey_id", weights)


def _every_channel(credit: pl.DataFrame, models: list[str], channels: pl.Series) -> pl.DataFrame:
    """One row per model and per channel of the month, zero for channels seen only in journeys that carry
    nothing: the rows `attribute_touches` gives when it sees every touch, in its order (model, channel)."""
    if channels.null_count() or (channels == "").any():
        raise ValueError("journeys contain a null or empty channel name")
    asked = list(dict.fromkeys(models))
    grid = pl.DataFrame(
        {"model": [m for m in asked for _ in range(channels.len())], "channel": channels.to_list() * len(asked)},
        schema={"model": pl.String, "channel": pl.String},
    )
    return grid.join(credit, on=["model", "channel"], how="left", maintain_order="left").with_columns(
        pl.col("conversions", "value").fill_null(0.0)
    )


@module(
    key=["marketing", "attribution"],
    contract=CONTRACT,
    partitions_def=MONTHLY,
    partition_column="month",
    ins={"journeys": dg.AssetIn(["marketing", "journeys"])},
)
def attribution(
    context: dg.AssetExecutionContext, journeys: pl.LazyFrame, config: AttributionConfig
) -> tuple[pl.DataFrame, dict[str, object]]:
    """Conversions and value credited to channels by first/last/linear/time-decay/position/Markov/Shapley models."""
    frames = []
    for month in partition_months(context):
        credit = attribute_month(journeys.filter(pl.col("month") == month), config)
        frames.append(credit.with_columns(pl.lit(month).alias("month")).select("month", *credit.columns))
    return pl.concat(frames), {
        "models": ", ".join(config.models),
        "half_life_days": config.half_life_days,
        "first_touch_weight": config.first_touch_weight,
        "last_touch_weight": config.last_touch_weight,
    }
