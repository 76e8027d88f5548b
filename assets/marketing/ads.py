"""Ad clicks and spend: landing files → raw_ads → cleansed_ads (+ quarantine)."""

from __future__ import annotations

import dataframely as dy
import polars as pl

from intelligence.contracts import Contract
from intelligence.sources import SourceSpec, build_source_assets
from intelligence.strict import (
    StrictContext,
    first_broken,
    implausible_time,
    negative,
    non_canonical,
    not_latest,
    outlier,
)

CHANNELS = ["paid_search", "display", "video"]


class AdClick(dy.Schema):
    click_id = dy.String(primary_key=True, description="Ad server click id; also carried by the web session it opens.")
    cookie_id = dy.String(nullable=False, description="Browser cookie of the clicker.")
    campaign = dy.String(nullable=False)
    channel = dy.Enum(CHANNELS, nullable=False)
    cost = dy.Float64(nullable=False, min=0, description="Cost of the click in USD.")
    ts = dy.Datetime(nullable=False, time_zone="UTC", description="Click time (UTC).")


CONTRACT = Contract(
    schema=AdClick,
    version="1.0.0",
    owner="team:paid-media",
    description="One row per ad click with its cost.",
)


def cleanse_ads(frame: pl.DataFrame) -> pl.DataFrame:
    """Normalise channel spellings ("Paid Search", "paid-search") before the contract sees them."""
    channel = pl.col("channel").str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    return frame.with_columns(channel.alias("channel"), pl.col("campaign").str.to_lowercase())


def strict_ads(frame: pl.DataFrame, ctx: StrictContext) -> pl.DataFrame:
    """Strict path: canonical channels only, latest record per click, plausible times and costs."""
    return first_broken(
        frame.with_columns(pl.col("campaign").str.to_lowercase()),
        [
            non_canonical("channel", CHANNELS),
            not_latest(["click_id"]),
            implausible_time("ts"),
            negative("cost"),
            outlier("cost"),
        ],
    )


SOURCE = SourceSpec(
    name="ads",
    domain="marketing",
    description="Ad clicks and spend",
    landing_columns={
        "click_id": "str",
        "cookie_id": "str",
        "campaign": "str",
        "channel": "str",
        "cost": "float",
        "ts": "datetime",
    },
    contract=CONTRACT,
    cleanse=cleanse_ads,
    strict=strict_ads,
)

assets = build_source_assets(SOURCE)
