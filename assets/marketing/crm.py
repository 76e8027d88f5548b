"""CRM customers and orders: landing files → raw_crm → cleansed_crm (+ quarantine)."""

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
    unknown_reference,
)

CURRENCIES = ["USD", "EUR", "GBP"]
SHA256_HEX = r"^[0-9a-f]{64}$"


class CrmRecord(dy.Schema):
    record_type = dy.Enum(["customer", "order"], nullable=False)
    customer_id = dy.String(nullable=False)
    email_hash = dy.String(nullable=True, regex=SHA256_HEX, description="sha256 of the lower-cased e-mail.")
    signup_ts = dy.Datetime(nullable=True, time_zone="UTC")
    order_id = dy.String(nullable=True)
    amount = dy.Float64(nullable=True, min_exclusive=0, description="Order amount in `currency`.")
    currency = dy.Enum(CURRENCIES, nullable=True)
    ts = dy.Datetime(nullable=False, time_zone="UTC", description="Signup time (customers) or order time.")

    @dy.rule()
    def customer_complete(cls) -> pl.Expr:
        return (pl.col("record_type") != "customer") | (
            pl.col("email_hash").is_not_null() & pl.col("signup_ts").is_not_null()
        )

    @dy.rule()
    def order_complete(cls) -> pl.Expr:
        return (pl.col("record_type") != "order") | (
            pl.col("order_id").is_not_null() & pl.col("amount").is_not_null() & pl.col("currency").is_not_null()
        )

    @dy.rule()
    def unique_order_id(cls) -> pl.Expr:
        return pl.col("order_id").is_null() | (pl.len().over("order_id") == 1)

    @dy.rule()
    def unique_customer(cls) -> pl.Expr:
        return (pl.col("record_type") != "customer") | (pl.len().over("record_type", "customer_id") == 1)


CONTRACT = Contract(
    schema=CrmRecord,
    version="1.0.0",
    owner="team:crm",
    description="Customers (with hashed e-mail) and their orders.",
)


def cleanse_crm(frame: pl.DataFrame) -> pl.DataFrame:
    """Normalise record type, currency and hash casing."""
    return frame.with_columns(
        pl.col("record_type").str.to_lowercase(),
        pl.col("currency").str.to_uppercase(),
        pl.col("email_hash").str.to_lowercase(),
    )


def strict_crm(frame: pl.DataFrame, ctx: StrictContext) -> pl.DataFrame:
    """Strict path: canonical types and currencies, latest record per customer or order, orders of known
    customers only, plausible times (signups of the initial export may be old) and amounts."""
    is_order = pl.col("record_type") == "order"
    customers = pl.concat(
        [ctx.known_customers, frame.filter(pl.col("record_type") == "customer")["customer_id"].drop_nulls()]
    )
    order_time = implausible_time("ts")
    any_time = implausible_time("ts", max_past=None)
    unknown = unknown_reference("customer_id", customers, "customer")
    return first_broken(
        frame,
        [
            non_canonical("record_type", ["customer", "order"]),
            non_canonical("currency", CURRENCIES),
            not_latest(["record_type", "customer_id", "order_id"]),
            (
                pl.when(is_order).then(order_time[0]).otherwise(any_time[0]),
                pl.when(is_order).then(order_time[1]).otherwise(any_time[1]),
            ),
            negative("amount"),
            outlier("amount"),
            (pl.when(is_order).then(unknown[0]), pl.when(is_order).then(unknown[1])),
        ],
    )


SOURCE = SourceSpec(
    name="crm",
    domain="marketing",
    description="CRM customers and orders",
    landing_columns={
        "record_type": "str",
        "customer_id": "str",
        "email_hash": "str",
        "signup_ts": "datetime",
        "order_id": "str",
        "amount": "float",
        "currency": "str",
        "ts": "datetime",
    },
    contract=CONTRACT,
    cleanse=cleanse_crm,
    strict=strict_crm,
    strict_needs_customers=True,
)

assets = build_source_assets(SOURCE)
