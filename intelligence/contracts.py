"""Data contracts: a dataframely schema plus a version, an owner, a description and SLAs.

Validation never raises on bad data. `Contract.validate` splits a frame into accepted rows (cast
to the contract's types) and rejected rows, each with the names of the rules it broke, so that
rows in = accepted + rejected always holds.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cached_property

import dagster as dg
import dataframely as dy
import polars as pl

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
RULES_COLUMN = "_rules"
ROW_ID = "__row"


def check_name_for_rule(rule: str) -> str:
    """Dagster check names allow letters, digits and underscores: `cost|min` → `rule_cost_min`."""
    return "rule_" + re.sub(r"[^0-9A-Za-z_]+", "_", rule).strip("_")


@dataclass(frozen=True)
class Validation:
    accepted: pl.DataFrame
    rejected: pl.DataFrame  # the input columns plus `_rules` ("cost|min, ts|nullability")
    counts: dict[str, int]  # rows failing each rule (a row can fail several)

    @property
    def rows_in(self) -> int:
        return self.accepted.height + self.rejected.height


@dataclass(frozen=True)
class Contract:
    """What a module promises about its output."""

    schema: type[dy.Schema]
    version: str
    owner: str
    description: str
    warn_rate: float = 0.02
    error_rate: float = 0.10
    freshness: dt.timedelta | None = None
    min_rows: int | None = None
    column_descriptions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not SEMVER.match(self.version):
            raise ValueError(f"contract {self.name}: version {self.version!r} is not semantic (e.g. 1.2.0)")
        if not 0 <= self.warn_rate <= self.error_rate <= 1:
            raise ValueError(
                f"contract {self.name}: need 0 <= warn_rate ({self.warn_rate}) <= error_rate ({self.error_rate}) <= 1"
            )

    @property
    def name(self) -> str:
        return self.schema.__name__

    @cached_property
    def rules(self) -> list[str]:
        """Every rule dataframely can report for this schema, in a stable order."""
        # `_validation_rules` is dataframely's own rule registry (private but stable in the pinned
        # 3.1 line); dtype rules appear only when casting, one per column.
        rules = list(self.schema._validation_rules(with_cast=False))
        # A cast to String, Float64, Boolean or a timestamp cannot fail on the typed frames the
        # platform produces; casts to Enum or narrower integers can, so only those get a rule.
        rules += [
            f"{name}|dtype"
            for name, col in self.schema.columns().items()
            if not isinstance(col.dtype, pl.String | pl.Float64 | pl.Boolean | pl.Datetime | pl.Date)
        ]
        return rules

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {name: col.dtype for name, col in self.schema.columns().items()}

    def table_schema(self) -> dg.TableSchema:
        columns = []
        for name, col in self.schema.columns().items():
            constraints = dg.TableColumnConstraints(
                nullable=bool(col.nullable),
                unique=bool(col.primary_key),
                other=["primary key"] if col.primary_key else [],
            )
            description = self.column_descriptions.get(name) or col.description
            columns.append(
                dg.TableColumn(name=name, type=str(col.dtype), description=description, constraints=constraints)
            )
        return dg.TableSchema(columns=columns)

    @cached_property
    def _tracked_schema(self) -> type[dy.Schema]:
        # The same schema plus a row id, so rejected rows can be joined back to the caller's extra
        # columns (provenance such as source file and line), which dataframely would drop.
        return type(f"{self.name}Tracked", (self.schema,), {"zz_row_id": dy.UInt32(nullable=False, alias=ROW_ID)})

    def validate(self, frame: pl.DataFrame) -> Validation:
        """Split `frame` into rows that honour the contract and rows that do not (with the rules).

        Columns of `frame` that the contract does not know are carried along on both sides.
        """
        columns = self.schema.column_names()
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"contract {self.name} {self.version}: the module's output lacks column(s) "
                f"{', '.join(missing)}; this is a bug in the module, not bad data"
            )
        extra = [c for c in frame.columns if c not in columns and c != ROW_ID]
        indexed = frame.with_row_index(ROW_ID)
        accepted_df, failure = self._tracked_schema.filter(indexed.select(*columns, ROW_ID), cast=True)
        counts = {rule: int(n) for rule, n in failure.counts().items() if n and not rule.startswith(ROW_ID)}
        details = failure.details()
        rule_columns = [c for c in details.columns if c not in columns and c != ROW_ID and not c.startswith(ROW_ID)]
        reasons = (
            pl.concat_str(
                [pl.when(pl.col(c) == "invalid").then(pl.lit(c)) for c in rule_columns],
                separator=", ",
                ignore_nulls=True,
            )
            if rule_columns
            else pl.lit(None, pl.String)
        )
        rejected = details.select(ROW_ID, reasons.alias(RULES_COLUMN)).join(
            indexed, on=ROW_ID, how="left", maintain_order="left"
        )
        accepted = pl.DataFrame(accepted_df)
        if extra:
            accepted = accepted.join(indexed.select(ROW_ID, *extra), on=ROW_ID, how="left", maintain_order="left")
        return Validation(
            accepted=accepted.drop(ROW_ID),
            rejected=rejected.select(*frame.columns, RULES_COLUMN),
            counts=counts,
        )
