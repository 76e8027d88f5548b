"""The module factory: a contract and a thin function around a pure polars function become an asset.

    @module(key=["marketing", "journeys"], contract=JOURNEYS, partitions_def=MONTHLY, ins={...})
    def journeys(context, touchpoints: pl.LazyFrame, config: JourneyConfig) -> pl.DataFrame:
        \"\"\"Per person, the touches before each conversion.\"\"\"
        return build_journeys(touchpoints.collect(), lookback_days=config.lookback_days)

gives the asset `marketing/journeys` and, beside it, `marketing/journeys_quarantine`, with one check
per contract rule plus the error rate, and the contract version, row counts and column schema in
the metadata. Rows that break the output contract never reach the lake: they go to the quarantine
with the rules they broke, so rows produced = accepted + quarantined. The house policies (owners,
retries, single-run backfills, freshness, kinds) come from `intelligence.policy`.
"""

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl

from intelligence import policy
from intelligence.checks import ERROR_RATE, error_rate_severity
from intelligence.contracts import RULES_COLUMN, Contract, check_name_for_rule
from intelligence.sources import QUARANTINE_IO_MANAGER, code_version
from resources.lake import PARTITION_COLUMN

MODULE_FACTORY_VERSION = "1"


def module_check_specs(asset_key: dg.AssetKey, contract: Contract) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            check_name_for_rule(rule),
            asset=asset_key,
            description=f"Output contract {contract.name} rule `{rule}`.",
        )
        for rule in contract.rules
    ]
    specs.append(
        dg.AssetCheckSpec(
            ERROR_RATE,
            asset=asset_key,
            description=(
                f"Share of produced rows that broke the contract: WARN above {contract.warn_rate:.0%}, "
                f"ERROR above {contract.error_rate:.0%}."
            ),
        )
    )
    return specs


def _quarantine_frame(rejected: pl.DataFrame, contract: Contract, partition_column: str | None) -> pl.DataFrame:
    """Rejected output rows as strings plus the rules they broke (a stable, queryable layout)."""
    keep = [c for c in rejected.columns if c != RULES_COLUMN]
    exprs = [pl.col(c).cast(pl.String, strict=False) for c in keep if c != partition_column]
    if partition_column and partition_column in rejected.columns:
        exprs.append(pl.col(partition_column))
    return rejected.select(
        *exprs,
        pl.lit("contract").alias("_stage"),
        pl.col(RULES_COLUMN).alias("_rule"),
        pl.format(
            "contract {} {} broken: {}", pl.lit(contract.name), pl.lit(contract.version), pl.col(RULES_COLUMN)
        ).alias("_reason"),
    )


def module(
    *,
    key: Sequence[str],
    contract: Contract,
    description: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    ins: Mapping[str, dg.AssetIn] | None = None,
    deps: Sequence[Any] | None = None,
    partition_column: str | None = None,
    kinds: set[str] | None = None,
    pool: str | None = None,
    automation_condition: dg.AutomationCondition | None = None,
    output_metadata: Mapping[str, Any] | None = None,
    group_name: str | None = None,
) -> Callable[[Callable[..., pl.DataFrame | tuple[pl.DataFrame, Mapping[str, Any]]]], dg.AssetsDefinition]:
    """Turn a function returning a polars frame (optionally with extra metadata) into a checked module."""
    asset_key = dg.AssetKey(list(key))
    quarantine_key = dg.AssetKey([*key[:-1], f"{key[-1]}_quarantine"])
    group = group_name or key[0]

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        doc = (description or inspect.getdoc(fn) or "").strip()
        if not doc:
            raise ValueError(f"module {asset_key.to_user_string()} needs a one-line docstring (its UI description)")
        version = code_version(MODULE_FACTORY_VERSION, contract.version, fn)
        meta: dict[str, Any] = {
            "contract": contract.name,
            "contract_version": contract.version,
            "contract_owner": contract.owner,
            "dagster/column_schema": contract.table_schema(),
        }
        if partition_column:
            meta[PARTITION_COLUMN] = partition_column
        quarantine_meta = {PARTITION_COLUMN: partition_column} if partition_column else {}
        takes_context = "context" in inspect.signature(fn).parameters

        @functools.wraps(fn)
        def compute(*args: Any, **kwargs: Any) -> Iterator[Any]:
            context: dg.AssetExecutionContext = kwargs["context"] if "context" in kwargs else args[0]
            if not takes_context:
                kwargs.pop("context", None)
                if args:
                    args = args[1:]
            produced = fn(*args, **kwargs)
            extra: Mapping[str, Any] = {}
            if isinstance(produced, tuple):
                produced, extra = produced
            if isinstance(produced, pl.LazyFrame):
                produced = produced.collect()
            validation = contract.validate(produced)
            rows = produced.height
            rejected = validation.rejected.height
            rate = rejected / rows if rows else 0.0
            yield dg.Output(
                validation.accepted,
                output_name="result",
                metadata={
                    "contract_version": contract.version,
                    "rows_produced": rows,
                    "accepted_rows": validation.accepted.height,
                    "rejected_rows": rejected,
                    **(output_metadata or {}),
                    **extra,
                },
            )
            yield dg.Output(
                _quarantine_frame(validation.rejected, contract, partition_column),
                output_name="quarantine",
                metadata={"rows_quarantined": rejected},
            )
            view = f"{key[0]}.{'__'.join([*key[1:-1], key[-1] + '_quarantine'])}"
            for rule in contract.rules:
                failed = validation.counts.get(rule, 0)
                yield dg.AssetCheckResult(
                    asset_key=asset_key,
                    check_name=check_name_for_rule(rule),
                    passed=failed == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=(
                        f"rule {rule}: 0 of {rows} rows broke it"
                        if not failed
                        else f"rule {rule}: {failed} of {rows} rows rejected → select * from {view} "
                        f"where _rule like '%{rule}%'"
                    ),
                    metadata={"rule": rule, "rejected_rows": failed},
                )
            passed, severity = error_rate_severity(rate, contract)
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=ERROR_RATE,
                passed=passed,
                severity=severity,
                description=f"{rejected} of {rows} produced rows broke contract {contract.name} ({rate:.2%})",
                metadata={"error_rate": rate, "rejected_rows": rejected},
            )
            del context

        # Dagster reads the signature to find inputs and config; present it with a context first and
        # no return annotation (the compute function yields several outputs and check results).
        params = list(inspect.signature(fn).parameters.values())
        if not takes_context:
            params.insert(
                0,
                inspect.Parameter(
                    "context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dg.AssetExecutionContext
                ),
            )
        compute.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        compute.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != "return"}

        outs = {
            "result": policy.asset_out(
                partitions_def,
                key=asset_key,
                description=doc,
                group_name=group,
                code_version=version,
                metadata=meta,
                kinds=kinds,
                automation_condition=automation_condition,
            ),
            "quarantine": policy.asset_out(
                partitions_def,
                key=quarantine_key,
                description=f"Rows of {asset_key.to_user_string()} breaking contract {contract.name}, with the rules.",
                group_name=group,
                code_version=version,
                io_manager_key=QUARANTINE_IO_MANAGER,
                metadata=quarantine_meta,
                kinds={"parquet", "quarantine"},
                automation_condition=automation_condition,
            ),
        }
        return policy.multi_asset(
            name="__".join(key),
            outs=outs,
            ins=dict(ins or {}),
            deps=list(deps or []),
            partitions_def=partitions_def,
            check_specs=module_check_specs(asset_key, contract),
            pool=pool,
            description=doc,
        )(compute)

    return decorate
