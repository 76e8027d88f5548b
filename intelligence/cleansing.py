"""The standard cleansing path, as pure polars: parsed landing rows → accepted + quarantined.

Stages, in order; each row leaves at the first stage that rejects it:
1. `parse`: the landing parser could not read the record (ragged row, bad bytes, bad value).
2. `cleansing`: an exact duplicate of an earlier record, or a source-specific rule (`_reject`).
3. `contract`: the output contract's rules (dataframely), named per rule.

Rows in = accepted + quarantined, by construction and checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from intelligence.contracts import RULES_COLUMN, Contract
from resources.landing_zone import LINE, PARSE_OK, PARSE_REASON, PARSE_STATUS, RAW, SOURCE_FILE

PARTITION_DATE = "landing_date"
REJECT = "_reject"  # set by a module's cleansing function: the rule a row breaks, else null
REJECT_DETAIL = "_reject_detail"  # optional: a human-readable detail for that rule
STAGE = "_stage"
RULE = "_rule"
REASON = "_reason"
PROVENANCE = [PARTITION_DATE, SOURCE_FILE, LINE]
QUARANTINE_META = [PARTITION_DATE, SOURCE_FILE, LINE, STAGE, RULE, REASON, RAW]

Cleanser = Callable[[pl.DataFrame], pl.DataFrame]


class CleansingBugError(RuntimeError):
    """A cleansing function broke its promise (dropped or added rows): a code bug, not bad data."""


@dataclass(frozen=True)
class CleansingResult:
    accepted: pl.DataFrame
    quarantine: pl.DataFrame
    rows_in: int
    rule_counts: dict[str, int]  # contract rule → rows failing it
    stage_counts: dict[str, int]  # parse / cleansing / contract → rows quarantined there
    cleansing_counts: dict[str, int]  # cleansing rule → rows


def quarantine_schema(business_columns: Sequence[str]) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {name: pl.String() for name in business_columns}
    schema.update(
        {
            PARTITION_DATE: pl.Date(),
            SOURCE_FILE: pl.String(),
            LINE: pl.Int64(),
            STAGE: pl.String(),
            RULE: pl.String(),
            REASON: pl.String(),
            RAW: pl.String(),
        }
    )
    return schema


def _to_quarantine(
    frame: pl.DataFrame, business: Sequence[str], stage: str, rule: pl.Expr, reason: pl.Expr
) -> pl.DataFrame:
    schema = quarantine_schema(business)
    exprs = []
    for name in business:
        if name in frame.columns:
            exprs.append(pl.col(name).cast(pl.String, strict=False).alias(name))
        else:
            exprs.append(pl.lit(None, pl.String).alias(name))
    for name in (PARTITION_DATE, SOURCE_FILE, LINE, RAW):
        exprs.append(pl.col(name) if name in frame.columns else pl.lit(None).alias(name))
    out = frame.select(*exprs, pl.lit(stage).alias(STAGE), rule.alias(RULE), reason.alias(REASON))
    return out.select([pl.col(n).cast(t) for n, t in schema.items()])


def mark_exact_duplicates(frame: pl.DataFrame, business: Sequence[str]) -> pl.DataFrame:
    """Flag every repeat of an identical record (all business columns equal) after its first copy."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, pl.String).alias(REJECT))
    first = pl.struct([pl.col(c) for c in business]).is_first_distinct()
    return frame.with_columns(pl.when(first).then(None).otherwise(pl.lit("duplicate_row")).alias(REJECT))


def run_cleansing(
    parsed: pl.DataFrame,
    business: Sequence[str],
    contract: Contract,
    cleanse: Cleanser | None = None,
) -> CleansingResult:
    """Parsed landing rows (with parse status) → accepted rows honouring `contract` + quarantine."""
    rows_in = parsed.height
    ok = parsed.filter(pl.col(PARSE_STATUS) == PARSE_OK)
    bad = parsed.filter(pl.col(PARSE_STATUS) != PARSE_OK)
    quarantined = [
        _to_quarantine(bad, business, "parse", pl.lit("parse"), pl.col(PARSE_REASON).fill_null("unparseable"))
    ]

    ok = mark_exact_duplicates(ok.drop(RAW), business)
    # Exact copies leave here; the module's rules (e.g. "latest record per key wins") see each record once.
    duplicates = ok.filter(pl.col(REJECT).is_not_null())
    ok = ok.filter(pl.col(REJECT).is_null())
    if cleanse is not None:
        height = ok.height
        ok = _apply_cleanser(ok, cleanse)
        if ok.height != height:
            raise CleansingBugError(
                f"cleansing function {getattr(cleanse, '__name__', cleanse)} returned {ok.height} rows for "
                f"{height}: it must flag rejects in '{REJECT}', never drop or add rows"
            )
    ok = pl.concat([duplicates, ok], how="diagonal_relaxed")
    flagged = ok.filter(pl.col(REJECT).is_not_null())
    detail = pl.col(REJECT_DETAIL) if REJECT_DETAIL in flagged.columns else pl.lit(None, pl.String)
    quarantined.append(
        _to_quarantine(
            flagged.with_columns(pl.lit(None, pl.String).alias(RAW)),
            business,
            "cleansing",
            pl.col(REJECT),
            pl.coalesce(detail, pl.col(REJECT)),
        )
    )
    cleansing_counts = (
        {str(rule): int(n) for rule, n in flagged.group_by(REJECT).len().iter_rows()} if flagged.height else {}
    )

    candidates = ok.filter(pl.col(REJECT).is_null()).drop(
        [c for c in (REJECT, REJECT_DETAIL, PARSE_STATUS, PARSE_REASON) if c in ok.columns]
    )
    validation = contract.validate(candidates)
    rejected = validation.rejected.with_columns(pl.lit(None, pl.String).alias(RAW))
    quarantined.append(
        _to_quarantine(
            rejected,
            business,
            "contract",
            pl.col(RULES_COLUMN),
            pl.format(
                "contract {} {} broken: {}",
                pl.lit(contract.name),
                pl.lit(contract.version),
                pl.col(RULES_COLUMN),
            ),
        )
    )
    quarantine = pl.concat(quarantined, how="vertical")
    accepted = validation.accepted.select(
        *contract.schema.column_names(), *[c for c in PROVENANCE if c in validation.accepted.columns]
    )
    if accepted.height + quarantine.height != rows_in:
        raise CleansingBugError(
            f"rows in ({rows_in}) != accepted ({accepted.height}) + quarantined ({quarantine.height})"
        )
    stage_counts = {
        "parse": bad.height,
        "cleansing": flagged.height,
        "contract": validation.rejected.height,
    }
    return CleansingResult(
        accepted=accepted,
        quarantine=quarantine,
        rows_in=rows_in,
        rule_counts=validation.counts,
        stage_counts=stage_counts,
        cleansing_counts=cleansing_counts,
    )


def _apply_cleanser(frame: pl.DataFrame, cleanse: Cleanser) -> pl.DataFrame:
    """Run a module's cleansing function on rows not rejected yet; make sure `_reject` exists."""
    out = cleanse(frame.drop(REJECT))
    if REJECT not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias(REJECT))
    return out
