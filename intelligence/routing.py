"""The feedback controller: which cleansing route each source takes, and when to switch.

Rule (parameters in `FeedbackPolicy`, overridable by environment):
- on the standard route, when at least `k` of the last `n` evaluated partitions have an error rate
  above the threshold, the source switches to the strict route, effective from the first breaching
  partition among them (those partitions are re-run through strict cleansing);
- on the strict route, after `m` consecutive clean partitions (the defect rate the strict asset
  saw upstream at or below the threshold), it switches back, effective from the next partition.
Entering needs several bad partitions, leaving needs a run of clean ones: a single noisy day moves
nothing, and a source on the edge does not flap.

The routing history lives in the DuckDB table `source_routing` (one row per switch). The route of a
partition is that of the latest switch effective on or before it; with no switch, `standard`.
"""

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

from resources.warehouse import Warehouse

STANDARD = "standard"
STRICT = "strict"
TABLE = "source_routing"
COLUMNS = ["source", "route", "changed_at", "effective_from", "reason", "evidence"]
CREATE = f"""
create table if not exists {TABLE} (
    source varchar not null,
    route varchar not null,
    changed_at timestamptz not null,
    effective_from date not null,
    reason varchar not null,
    evidence json
)
"""


@dataclass(frozen=True)
class FeedbackPolicy:
    k: int = 2
    n: int = 3
    m: int = 3
    threshold: float = 0.10

    def __post_init__(self) -> None:
        if not (1 <= self.k <= self.n and self.m >= 1 and 0 <= self.threshold <= 1):
            raise ValueError(f"invalid feedback policy {self}: need 1 <= k <= n, m >= 1, 0 <= threshold <= 1")

    @classmethod
    def from_env(cls) -> "FeedbackPolicy":
        env = os.environ
        return cls(
            k=int(env.get("INTELLIGENCE_REROUTE_K", cls.k)),
            n=int(env.get("INTELLIGENCE_REROUTE_N", cls.n)),
            m=int(env.get("INTELLIGENCE_RECOVER_M", cls.m)),
            threshold=float(env.get("INTELLIGENCE_REROUTE_THRESHOLD", cls.threshold)),
        )


@dataclass(frozen=True)
class Switch:
    source: str
    route: str
    effective_from: dt.date
    reason: str
    evidence: dict[str, Any]
    affected: tuple[dt.date, ...]  # partitions to (re)run on the new route


def decide(
    source: str,
    route: str,
    standard_rates: Mapping[dt.date, float],
    strict_rates: Mapping[dt.date, float],
    since: dt.date | None,
    policy: FeedbackPolicy,
) -> Switch | None:
    """The switch to make now, if any. `since` is when the current route took effect.

    The rate mappings are in evaluation order (oldest first), as `error_rates` returns them: the
    "last n partitions" are the n most recently evaluated ones, so a late file re-evaluating an old
    day counts as news, and a backfill's days count in partition order.
    """
    if route == STANDARD:
        days = [d for d in standard_rates if since is None or d >= since][-policy.n :]
        breaches = sorted(d for d in days if standard_rates[d] > policy.threshold)
        if len(breaches) < policy.k:
            return None
        first = breaches[0]
        affected = tuple(sorted(d for d in standard_rates if first <= d <= max(days)))
        evidence = {d.isoformat(): round(standard_rates[d], 4) for d in days}
        return Switch(
            source=source,
            route=STRICT,
            effective_from=first,
            reason=(
                f"{len(breaches)} of the last {len(days)} partitions above the {policy.threshold:.0%} error rate "
                f"(worst {max(standard_rates[d] for d in breaches):.1%} on "
                f"{max(breaches, key=lambda d: standard_rates[d])})"
            ),
            evidence={
                "standard_error_rates": evidence,
                "k": policy.k,
                "n": policy.n,
                "affected": [affected[0].isoformat(), affected[-1].isoformat()],
            },
            affected=affected,
        )
    days = [d for d in strict_rates if since is None or d >= since]
    tail = days[-policy.m :]
    if len(tail) < policy.m or any(strict_rates[d] > policy.threshold for d in tail):
        return None
    return Switch(
        source=source,
        route=STANDARD,
        effective_from=max(tail) + dt.timedelta(days=1),
        reason=f"{policy.m} consecutive clean partitions on the strict route (defect rate ≤ {policy.threshold:.0%})",
        evidence={"strict_error_rates": {d.isoformat(): round(strict_rates[d], 4) for d in tail}, "m": policy.m},
        affected=(),
    )


# -- the routing table ---------------------------------------------------------------------------


def load_routes(warehouse: Warehouse) -> pl.DataFrame:
    """Every switch so far (empty if none or no warehouse yet)."""
    empty = pl.DataFrame(
        schema={
            "source": pl.String,
            "route": pl.String,
            "changed_at": pl.Datetime("us", "UTC"),
            "effective_from": pl.Date,
            "reason": pl.String,
            "evidence": pl.String,
        }
    )
    try:
        with warehouse.read() as con:
            found = con.execute("select count(*) from duckdb_tables() where table_name = ?", [TABLE]).fetchone()
            if not found or not found[0]:
                return empty
            cursor = con.execute(f"select {', '.join(COLUMNS)} from {TABLE} order by changed_at")
            rows = cursor.fetchall()
    except FileNotFoundError:
        return empty
    return pl.DataFrame(rows, schema=empty.schema, orient="row")


def record_switch(warehouse: Warehouse, switch: Switch, changed_at: dt.datetime) -> None:
    with warehouse.write() as con:
        con.execute(CREATE)
        con.execute(
            f"insert into {TABLE} values (?, ?, ?, ?, ?, ?)",
            [
                switch.source,
                switch.route,
                changed_at,
                switch.effective_from,
                switch.reason,
                json.dumps(switch.evidence, sort_keys=True),
            ],
        )


def current_route(routes: pl.DataFrame, source: str) -> tuple[str, dt.date | None]:
    """The route a source is on now and since when (effective partition)."""
    mine = routes.filter(pl.col("source") == source).sort("changed_at")
    if mine.height == 0:
        return STANDARD, None
    last = mine.row(-1, named=True)
    return str(last["route"]), last["effective_from"]


def route_on(routes: pl.DataFrame, source: str, day: dt.date) -> str:
    """The route of one partition: the latest switch (by decision time) effective on or before it."""
    mine = routes.filter((pl.col("source") == source) & (pl.col("effective_from") <= day)).sort("changed_at")
    return STANDARD if mine.height == 0 else str(mine["route"][-1])


def strict_days(routes: pl.DataFrame, source: str, days: Iterable[dt.date]) -> set[dt.date]:
    return {day for day in days if route_on(routes, source, day) == STRICT}


# -- reading the check history from the instance --------------------------------------------------


def error_rates(instance: dg.DagsterInstance, asset_key: dg.AssetKey, limit: int = 50) -> dict[dt.date, float]:
    """Per partition, the latest evaluated error rate of an asset's `error_rate` check, in evaluation
    order (a partition evaluated again moves to the end).

    A run over a partition range records one evaluation with the per-partition rates in its
    metadata (`partition_error_rates`), taken in partition order; planned-but-unevaluated records
    are skipped.
    """
    check = dg.AssetCheckKey(asset_key, "error_rate")
    records = instance.event_log_storage.get_asset_check_execution_history(check, limit=limit)
    rates: dict[dt.date, float] = {}
    for record in reversed(records):  # oldest first, so later evaluations win
        evaluation = record.evaluation
        # `evaluation` is also set (to the AssetCheckEvaluationPlanned data) for planned records.
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue
        metadata = evaluation.metadata or {}
        per_partition = metadata.get("partition_error_rates")
        value = getattr(per_partition, "value", per_partition)
        if isinstance(value, Mapping):
            for key, rate in sorted(value.items()):
                day = dt.date.fromisoformat(str(key))
                rates.pop(day, None)
                rates[day] = float(rate)
    return rates


def history_markdown(routes: pl.DataFrame, limit: int = 30) -> str:
    if routes.height == 0:
        return "_no source has been rerouted_"
    lines = ["| changed at | source | route | effective from | reason |", "|---|---|---|---|---|"]
    for row in routes.sort("changed_at", descending=True).head(limit).iter_rows(named=True):
        lines.append(
            f"| {row['changed_at']:%Y-%m-%d %H:%M} | {row['source']} | {row['route']} | {row['effective_from']} "
            f"| {row['reason']} |"
        )
    return "\n".join(lines)


def select_routed(
    standard: pl.LazyFrame,
    strict: pl.LazyFrame,
    strict_days_available: Sequence[dt.date],
    partition_column: str = "landing_date",
) -> pl.LazyFrame:
    """Rows of each partition from the route it takes: strict for `strict_days_available`, else standard."""
    chosen = list(strict_days_available)
    if not chosen:
        return standard
    on_strict = pl.col(partition_column).is_in(chosen)
    return pl.concat([standard.filter(~on_strict), strict.filter(on_strict)], how="diagonal_relaxed")
