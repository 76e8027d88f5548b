"""Contract checks: one check per contract rule, the parse and cleansing stages, and the error rate.

Results never raise: a violated contract shows up as a failed check whose description names the
rule, the number of rows and where the rejected rows are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from intelligence.contracts import Contract, check_name_for_rule

ERROR_RATE = "error_rate"
PARSE = "parseable_rows"
CLEANSING = "cleansing_rules"
VOLUME = "volume"


def contract_check_specs(asset_key: dg.AssetKey, contract: Contract) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            check_name_for_rule(rule),
            asset=asset_key,
            description=f"Contract {contract.name} rule `{rule}`: rows breaking it are quarantined.",
        )
        for rule in contract.rules
    ]
    specs.append(dg.AssetCheckSpec(PARSE, asset=asset_key, description="Landing records that could not be parsed."))
    specs.append(
        dg.AssetCheckSpec(
            CLEANSING,
            asset=asset_key,
            description="Records rejected by cleansing (duplicates, module rules).",
        )
    )
    specs.append(
        dg.AssetCheckSpec(
            ERROR_RATE,
            asset=asset_key,
            description=(
                f"Share of input rows quarantined: WARN above {contract.warn_rate:.0%}, "
                f"ERROR above {contract.error_rate:.0%}."
            ),
        )
    )
    if contract.min_rows is not None:
        specs.append(
            dg.AssetCheckSpec(VOLUME, asset=asset_key, description=f"At least {contract.min_rows} rows per partition.")
        )
    return specs


def _where(quarantine_view: str, location: str, condition: str) -> str:
    return f"quarantine at {location} (SQL: select * from {quarantine_view} where {condition})"


def error_rate_severity(rate: float, contract: Contract) -> tuple[bool, dg.AssetCheckSeverity]:
    if rate > contract.error_rate:
        return False, dg.AssetCheckSeverity.ERROR
    if rate > contract.warn_rate:
        return False, dg.AssetCheckSeverity.WARN
    return True, dg.AssetCheckSeverity.WARN


def contract_check_results(
    *,
    asset_key: dg.AssetKey,
    contract: Contract,
    rows_in: int,
    rule_counts: Mapping[str, int],
    stage_counts: Mapping[str, int],
    cleansing_counts: Mapping[str, int],
    partitions: Sequence[str],
    partition_rates: Mapping[str, float],
    quarantine_location: str,
    quarantine_view: str,
    accepted: int,
) -> list[dg.AssetCheckResult]:
    scope = partitions[0] if len(partitions) == 1 else f"{partitions[0]}…{partitions[-1]}"
    common: dict[str, Any] = {"partitions": scope, "rows_in": rows_in}
    results = []
    for rule in contract.rules:
        failed = int(rule_counts.get(rule, 0))
        description = (
            f"rule {rule}: 0 of {rows_in} rows broke it"
            if not failed
            else f"rule {rule}: {failed} of {rows_in} rows rejected → "
            + _where(quarantine_view, quarantine_location, f"_rule like '%{rule}%'")
        )
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check_name_for_rule(rule),
                passed=failed == 0,
                severity=dg.AssetCheckSeverity.WARN,
                description=description,
                metadata={**common, "rule": rule, "rejected_rows": failed},
            )
        )
    parse = int(stage_counts.get("parse", 0))
    results.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=PARSE,
            passed=parse == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{parse} of {rows_in} landing records could not be parsed"
                + (" → " + _where(quarantine_view, quarantine_location, "_stage = 'parse'") if parse else "")
            ),
            metadata={**common, "rejected_rows": parse},
        )
    )
    cleansing = int(stage_counts.get("cleansing", 0))
    breakdown = ", ".join(f"{rule}: {n}" for rule, n in sorted(cleansing_counts.items()))
    results.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CLEANSING,
            passed=cleansing == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{cleansing} of {rows_in} rows rejected by cleansing"
                + (
                    f" ({breakdown}) → " + _where(quarantine_view, quarantine_location, "_stage = 'cleansing'")
                    if cleansing
                    else ""
                )
            ),
            metadata={
                **common,
                "rejected_rows": cleansing,
                **{f"rule {k}": v for k, v in cleansing_counts.items()},
            },
        )
    )
    rejected = rows_in - accepted
    rate = rejected / rows_in if rows_in else 0.0
    passed, severity = error_rate_severity(rate, contract)
    results.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=ERROR_RATE,
            passed=passed,
            severity=severity,
            description=(
                f"{rejected} of {rows_in} rows quarantined ({rate:.2%}; warn above {contract.warn_rate:.0%}, "
                f"error above {contract.error_rate:.0%})"
                + (" → " + _where(quarantine_view, quarantine_location, "true") if rejected else "")
            ),
            metadata={
                **common,
                "error_rate": float(rate),
                "rejected_rows": rejected,
                "warn_rate": contract.warn_rate,
                "error_rate_threshold": contract.error_rate,
                "partition_error_rates": dg.MetadataValue.json(dict(partition_rates)),
            },
        )
    )
    return results


def volume_check_result(
    asset_key: dg.AssetKey, contract: Contract, rows_per_partition: Mapping[str, int]
) -> dg.AssetCheckResult:
    minimum = contract.min_rows or 0
    short = {p: n for p, n in rows_per_partition.items() if n < minimum}
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=VOLUME,
        passed=not short,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"every partition has at least {minimum} accepted rows"
            if not short
            else f"{len(short)} partition(s) below {minimum} accepted rows: "
            + ", ".join(f"{p} ({n})" for p, n in sorted(short.items())[:10])
        ),
        metadata={"rows_per_partition": dg.MetadataValue.json(dict(rows_per_partition))},
    )
