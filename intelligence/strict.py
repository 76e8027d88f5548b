"""The strict cleansing path: rules a misbehaving source is put through until it recovers.

The strict path honours the same output contract as the standard one but trusts less:
- duplicates by key are resolved (the latest record wins; the others are quarantined),
- timestamps in the future or implausibly far in the past are rejected,
- numeric outliers (robust z-score against the day's own distribution) are rejected,
- ids that must exist in the CRM must exist there (referential integrity),
- values that the standard path would repair (odd spellings, case) are rejected instead.

Each rule is an expression giving a rule name for rows that break it (null otherwise); a module's
strict function combines them with `first_broken`. Rows keep their order and count, as every
cleansing function must.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from intelligence.cleansing import PARTITION_DATE, REJECT, REJECT_DETAIL
from resources.landing_zone import LINE, SOURCE_FILE

OUTLIER_Z = 12.0  # robust z-score beyond which a value is an outlier (MAD-based, very conservative)
MAX_FUTURE = dt.timedelta(days=1)  # clock skew allowance after the landing day ends
MAX_PAST = dt.timedelta(days=30)  # how late a record may land after it happened


@dataclass(frozen=True)
class StrictContext:
    """What strict rules may look at besides the rows: known CRM customers."""

    known_customers: pl.Series  # customer ids present in the CRM up to the partition


def rule(condition: pl.Expr, name: str, detail: pl.Expr | str | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(rule name where `condition` holds, detail) as expressions."""
    detail_expr = pl.lit(detail) if isinstance(detail, str) or detail is None else detail
    return pl.when(condition).then(pl.lit(name)), pl.when(condition).then(detail_expr)


def first_broken(frame: pl.DataFrame, rules: Sequence[tuple[pl.Expr, pl.Expr]]) -> pl.DataFrame:
    """Set `_reject`/`_reject_detail` to the first rule each row breaks (null if none)."""
    if not rules:
        return frame.with_columns(pl.lit(None, pl.String).alias(REJECT), pl.lit(None, pl.String).alias(REJECT_DETAIL))
    return frame.with_columns(
        pl.coalesce([name for name, _ in rules]).cast(pl.String).alias(REJECT),
        pl.coalesce([d.cast(pl.String) for _, d in rules]).alias(REJECT_DETAIL),
    )


def not_latest(keys: Sequence[str], order: Sequence[str] = ("ts", SOURCE_FILE, LINE)) -> tuple[pl.Expr, pl.Expr]:
    """Duplicates by key: every record but the latest (by ts, then file, then line) is rejected."""
    present = [c for c in order]
    rank = pl.struct(present).rank("ordinal", descending=True).over(keys)
    keyed = pl.all_horizontal([pl.col(k).is_not_null() for k in keys])
    return rule(
        keyed & (rank > 1), "duplicate_key", pl.format("a later record has the same {}", pl.lit("+".join(keys)))
    )


def implausible_time(column: str = "ts", max_past: dt.timedelta | None = MAX_PAST) -> tuple[pl.Expr, pl.Expr]:
    """In the future relative to the landing day, or older than `max_past` before it."""
    day_start = pl.col(PARTITION_DATE).cast(pl.Datetime("us", "UTC"))
    future = pl.col(column) > day_start + pl.duration(days=1) + MAX_FUTURE
    condition = future if max_past is None else future | (pl.col(column) < day_start - max_past)
    return rule(
        condition,
        "implausible_time",
        pl.format("{} {} is implausible for landing day {}", pl.lit(column), pl.col(column), pl.col(PARTITION_DATE)),
    )


def negative(column: str) -> tuple[pl.Expr, pl.Expr]:
    return rule(pl.col(column) < 0, f"negative_{column}", pl.format("{} = {}", pl.lit(column), pl.col(column)))


def outlier(column: str, z: float = OUTLIER_Z) -> tuple[pl.Expr, pl.Expr]:
    """Robust z-score (median/MAD of the landing day) above `z`."""
    median = pl.col(column).median().over(PARTITION_DATE)
    mad = (pl.col(column) - median).abs().median().over(PARTITION_DATE)
    score = (pl.col(column) - median).abs() / (1.4826 * mad)
    condition = (mad > 0) & (score > z)
    return rule(
        condition,
        f"outlier_{column}",
        pl.format("{} = {} is an outlier (robust z > {})", pl.lit(column), pl.col(column), pl.lit(z)),
    )


def unknown_reference(column: str, known: pl.Series, what: str) -> tuple[pl.Expr, pl.Expr]:
    """A non-null id that does not exist in the reference set."""
    condition = pl.col(column).is_not_null() & ~pl.col(column).is_in(known.implode())
    return rule(
        condition,
        f"unknown_{what}",
        pl.format("{} {} does not exist in the {}", pl.lit(column), pl.col(column), pl.lit(what)),
    )


def non_canonical(column: str, allowed: Sequence[str]) -> tuple[pl.Expr, pl.Expr]:
    """A value the standard path would have repaired (case, spelling): strict does not guess."""
    condition = pl.col(column).is_not_null() & ~pl.col(column).is_in(list(allowed))
    return rule(
        condition,
        f"non_canonical_{column}",
        pl.format("{} '{}' is not one of the canonical values", pl.lit(column), pl.col(column)),
    )
