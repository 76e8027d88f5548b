"""The house policies, set once: every asset of the platform is declared through these wrappers.

Owners, retries, the single-run backfill policy for partitioned assets, freshness by cadence and
the kinds shown in the UI come from here, so a module never repeats them.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

OWNERS = ("team:analytics",)

# Connectors talk to the outside world: retry with exponential backoff and jitter, so a transient
# failure heals itself and many retrying steps do not stampede a source at the same instant.
RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

FRESHNESS_BY_CADENCE: Mapping[str, dg.FreshnessPolicy] = {
    "daily": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=30)),
    "monthly": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=33), warn_window=dt.timedelta(days=32)),
}

DUCKDB_POOL = "duckdb"

# `backfill_policy` is marked beta in Dagster 1.13, but single-run backfills are a requirement of
# the platform. We accept that one beta parameter knowingly, here and nowhere else, so importing
# the definitions stays free of warnings.
_ACCEPTED_BETA = r"Parameter `backfill_policy` of (function|class) `(asset|multi_asset|AssetOut)`"


def _quietly(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=_ACCEPTED_BETA)
        return build(*args, **kwargs)


def _decorator(build: Callable[..., Any], **kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    decorator = _quietly(build, **kwargs)
    return lambda fn: _quietly(decorator, fn)


def _cadence(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if isinstance(partitions_def, dg.DailyPartitionsDefinition):
        return "daily"
    if isinstance(partitions_def, dg.MonthlyPartitionsDefinition):
        return "monthly"
    return None


def _defaults(partitions_def: dg.PartitionsDefinition | None, kinds: set[str] | None) -> dict[str, Any]:
    cadence = _cadence(partitions_def)
    return {
        "owners": list(OWNERS),
        "kinds": {"polars", *(kinds or {"parquet"})},
        "freshness_policy": FRESHNESS_BY_CADENCE.get(cadence) if cadence else None,
    }


def asset(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.asset` with the house policies applied."""
    partitions_def = kwargs.get("partitions_def")
    for key, value in _defaults(partitions_def, kwargs.pop("kinds", None)).items():
        kwargs.setdefault(key, value)
    kwargs.setdefault("retry_policy", RETRY)
    if partitions_def is not None:
        kwargs.setdefault("backfill_policy", dg.BackfillPolicy.single_run())
    return _decorator(dg.asset, **kwargs)


def asset_out(partitions_def: dg.PartitionsDefinition | None = None, **kwargs: Any) -> dg.AssetOut:
    """`dg.AssetOut` with the house policies applied (use with `multi_asset`)."""
    for key, value in _defaults(partitions_def, kwargs.pop("kinds", None)).items():
        kwargs.setdefault(key, value)
    return dg.AssetOut(**kwargs)


def multi_asset(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.multi_asset` with the house retry and backfill policies (build its outs with `asset_out`)."""
    kwargs.setdefault("retry_policy", RETRY)
    if kwargs.get("partitions_def") is not None:
        kwargs.setdefault("backfill_policy", dg.BackfillPolicy.single_run())
    return _decorator(dg.multi_asset, **kwargs)


# Event-driven modules follow their inputs as soon as those are updated (declarative automation).
EAGER = dg.AutomationCondition.eager()
# For modules reading a window of earlier partitions (some of which may legitimately never exist,
# e.g. days before a stream started): do not wait for every partition of the window.
EAGER_ALLOWING_GAPS = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())

# For modules right after the landing zone, whose inputs arrive late (most exports land the morning after
# their day, some files days later): rebuild any partition of the last LATE_DAYS whose inputs were updated,
# not only the latest one (`eager()` acts in the latest time window only). Gaps allowed; it never re-fills
# older history by itself (that is a backfill), and never reacts to a partition merely being missing.
LATE_DAYS = 35


def eager_recent_allowing_gaps(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Rebuild a partition of the last LATE_DAYS when an input (other than `ignore`) was updated since it was
    last *requested*. Not `since_last_handled()`: that also resets when the partition finishes materializing,
    so an input landing while the partition is being built (blocked by `~in_progress()`) would be forgotten
    when that run ends, and the late file would never reach it."""
    updated = dg.AutomationCondition.any_deps_updated()
    if ignore is not None:
        updated = updated.ignore(ignore)
    since_requested = dg.AutomationCondition.newly_requested() | dg.AutomationCondition.initial_evaluation()
    return (
        dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=LATE_DAYS))
        & updated.since(since_requested)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"eager over the last {LATE_DAYS} days, gaps allowed")
