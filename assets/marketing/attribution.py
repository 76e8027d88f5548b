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


def attribute_month(journeys: pl.DataFrame, config: AttributionConfig) -> pl.DataFrame:
    """Credit one month's journeys with every model asked; credits sum to the month's totals."""
    touches = journeys.select("journey_id", "ts", "channel")
    per_journey = journeys.group_by("journey_id").agg(pl.col("conversions", "value", "nulls", "conversion_ts").first())
    return attribute_touches(
        touches,
        per_journey,
        models=config.models,
        half_life_days=config.half_life_days,
        first=config.first_touch_weight,
        last=config.last_touch_weight,
    )


@module(
    key=["marketing", "attribution"],
    contract=CONTRACT,
    partitions_def=MONTHLY,
    partition_column="month",
    ins={"journeys": dg.AssetIn(["marketing", "journeys"])},
)
def attribution(
    context: dg.AssetExecutionContext, journeys: pl.DataFrame, config: AttributionConfig
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
