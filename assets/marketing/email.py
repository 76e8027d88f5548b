"""E-mail sends, opens and clicks: landing files → raw_email → cleansed_email (+ quarantine)."""

from __future__ import annotations

import dataframely as dy
import polars as pl

from intelligence.contracts import Contract
from intelligence.sources import SourceSpec, build_source_assets
from intelligence.strict import StrictContext, first_broken, implausible_time, non_canonical, not_latest

SHA256_HEX = r"^[0-9a-f]{64}$"


class EmailEvent(dy.Schema):
    message_id = dy.String(primary_key=True)
    email_hash = dy.String(nullable=False, regex=SHA256_HEX, description="sha256 of the lower-cased e-mail.")
    campaign = dy.String(nullable=False)
    event_type = dy.Enum(["send", "open", "click"], primary_key=True)
    ts = dy.Datetime(primary_key=True, time_zone="UTC")


CONTRACT = Contract(
    schema=EmailEvent,
    version="1.0.0",
    owner="team:crm",
    description="One row per e-mail send, open or click.",
)


def cleanse_email(frame: pl.DataFrame) -> pl.DataFrame:
    """Normalise event type, campaign and hash casing."""
    return frame.with_columns(
        pl.col("event_type").str.to_lowercase(),
        pl.col("campaign").str.to_lowercase(),
        pl.col("email_hash").str.to_lowercase(),
    )


def strict_email(frame: pl.DataFrame, ctx: StrictContext) -> pl.DataFrame:
    """Strict path: canonical event types, one record per message event, plausible times."""
    return first_broken(
        frame.with_columns(pl.col("campaign").str.to_lowercase()),
        [
            non_canonical("event_type", ["send", "open", "click"]),
            not_latest(["message_id", "event_type", "ts"]),
            implausible_time("ts"),
        ],
    )


SOURCE = SourceSpec(
    name="email",
    domain="marketing",
    description="E-mail sends, opens and clicks",
    landing_columns={
        "message_id": "str",
        "email_hash": "str",
        "campaign": "str",
        "event_type": "str",
        "ts": "datetime",
    },
    contract=CONTRACT,
    cleanse=cleanse_email,
    strict=strict_email,
)

assets = build_source_assets(SOURCE)
