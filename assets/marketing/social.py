"""Social engagements and clicks: landing JSON lines → raw_social → cleansed_social (+ quarantine)."""

from __future__ import annotations

import dataframely as dy
import polars as pl

from intelligence.contracts import Contract
from intelligence.sources import SourceSpec, build_source_assets
from intelligence.strict import StrictContext, first_broken, implausible_time, non_canonical, not_latest

PLATFORMS = ["facebook", "instagram", "linkedin", "tiktok", "x"]
EVENT_TYPES = ["impression", "engagement", "click"]


class SocialEvent(dy.Schema):
    event_id = dy.String(primary_key=True)
    cookie_id = dy.String(nullable=True, description="Set when the engagement is tied to a browser (clicks).")
    social_handle = dy.String(nullable=True, description="The engaging account, when the platform shares it.")
    platform = dy.Enum(PLATFORMS, nullable=False)
    campaign = dy.String(nullable=False)
    event_type = dy.Enum(EVENT_TYPES, nullable=False)
    ts = dy.Datetime(nullable=False, time_zone="UTC")

    @dy.rule()
    def identified(cls) -> pl.Expr:
        """An event nobody can be linked to is useless for attribution."""
        return pl.col("cookie_id").is_not_null() | pl.col("social_handle").is_not_null()

    @dy.rule()
    def click_has_cookie(cls) -> pl.Expr:
        return (pl.col("event_type") != "click") | pl.col("cookie_id").is_not_null()


CONTRACT = Contract(
    schema=SocialEvent,
    version="1.0.0",
    owner="team:social",
    description="One row per social impression, engagement or click.",
)


def cleanse_social(frame: pl.DataFrame) -> pl.DataFrame:
    """Lower-case platform, event type and campaign; strip a leading @ from handles."""
    return frame.with_columns(
        pl.col("platform").str.to_lowercase(),
        pl.col("event_type").str.to_lowercase(),
        pl.col("campaign").str.to_lowercase(),
        pl.col("social_handle").str.strip_prefix("@").str.to_lowercase(),
    )


def strict_social(frame: pl.DataFrame, ctx: StrictContext) -> pl.DataFrame:
    """Strict path: canonical platforms and event types, latest record per event, plausible times."""
    return first_broken(
        frame.with_columns(
            pl.col("campaign").str.to_lowercase(),
            pl.col("social_handle").str.strip_prefix("@").str.to_lowercase(),
        ),
        [
            non_canonical("platform", PLATFORMS),
            non_canonical("event_type", EVENT_TYPES),
            not_latest(["event_id"]),
            implausible_time("ts"),
        ],
    )


SOURCE = SourceSpec(
    name="social",
    domain="marketing",
    description="Social engagements and clicks",
    landing_columns={
        "event_id": "str",
        "cookie_id": "str",
        "social_handle": "str",
        "platform": "str",
        "campaign": "str",
        "event_type": "str",
        "ts": "datetime",
    },
    contract=CONTRACT,
    cleanse=cleanse_social,
    strict=strict_social,
)

assets = build_source_assets(SOURCE)
