"""Web analytics sessions: landing files → raw_web → cleansed_web (+ quarantine)."""

from __future__ import annotations

import dataframely as dy
import polars as pl

from intelligence.contracts import Contract
from intelligence.sources import SourceSpec, build_source_assets
from intelligence.strict import StrictContext, first_broken, implausible_time, negative, not_latest, unknown_reference


class WebSession(dy.Schema):
    session_id = dy.String(primary_key=True)
    cookie_id = dy.String(nullable=False)
    customer_id = dy.String(nullable=True, description="Set when the visitor is logged in.")
    click_id = dy.String(nullable=True, description="Ad click id when the session came from an ad.")
    utm_source = dy.String(nullable=True)
    utm_medium = dy.String(nullable=True)
    utm_campaign = dy.String(nullable=True)
    landing_page = dy.String(nullable=False, description="Every session lands on a page.")
    ts = dy.Datetime(nullable=False, time_zone="UTC", description="Session start (UTC).")
    goal_completions = dy.Int64(nullable=False, min=0)


CONTRACT = Contract(
    schema=WebSession,
    version="1.0.0",
    owner="team:web-analytics",
    description="One row per web session with its referrer (utm) and goal completions.",
)


def cleanse_web(frame: pl.DataFrame) -> pl.DataFrame:
    """Lower-case utm parameters so `Google`/`google` are one source."""
    return frame.with_columns(
        pl.col("utm_source").str.to_lowercase(),
        pl.col("utm_medium").str.to_lowercase(),
        pl.col("utm_campaign").str.to_lowercase(),
    )


def strict_web(frame: pl.DataFrame, ctx: StrictContext) -> pl.DataFrame:
    """Strict path: latest record per session, plausible times and counts, logged-in customers must exist."""
    return first_broken(
        cleanse_web(frame),
        [
            not_latest(["session_id"]),
            implausible_time("ts"),
            negative("goal_completions"),
            unknown_reference("customer_id", ctx.known_customers, "customer"),
        ],
    )


SOURCE = SourceSpec(
    name="web",
    domain="marketing",
    description="Web analytics sessions",
    landing_columns={
        "session_id": "str",
        "cookie_id": "str",
        "customer_id": "str",
        "click_id": "str",
        "utm_source": "str",
        "utm_medium": "str",
        "utm_campaign": "str",
        "landing_page": "str",
        "ts": "datetime",
        "goal_completions": "int",
    },
    contract=CONTRACT,
    cleanse=cleanse_web,
    strict=strict_web,
    strict_needs_customers=True,
)

assets = build_source_assets(SOURCE)
