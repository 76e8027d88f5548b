"""Partitions, from the one start-date setting: daily for sources and telemetry, monthly for reports."""

from __future__ import annotations

import datetime as dt
import warnings

import dagster as dg

from intelligence.settings import settings

START_DATE = settings().start_date

DAILY = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC", end_offset=1)
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=START_DATE.replace(day=1).isoformat(), timezone="UTC", end_offset=1)


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The days this run covers: one for a normal run, several for a single-run backfill."""
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def month_start(key: str) -> dt.date:
    return dt.date.fromisoformat(key).replace(day=1)


def next_month(day: dt.date) -> dt.date:
    """First day of the month after `day`'s month."""
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def previous_month(day: dt.date) -> dt.date:
    """First day of the month before `day`'s month."""
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def months_before(day: dt.date, months: int) -> dt.date:
    """First day of the month `months` months before `day`'s month."""
    first = day.replace(day=1)
    for _ in range(months):
        first = previous_month(first)
    return first


def partition_months(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The months (first days) this run covers: one normally, several for a single-run backfill."""
    return [month_start(key) for key in context.partition_keys]


def lookback(start_offset: int, end_offset: int = 0) -> dg.TimeWindowPartitionMapping:
    """A time-window mapping reaching `start_offset` downstream partitions back, clipped at the first one.

    `allow_nonexistent_upstream_partitions` is a beta parameter in Dagster 1.13. Without it the first
    partitions (whose lookback reaches before INTELLIGENCE_START_DATE) could not run at all, so we
    accept it knowingly, here only, and keep imports free of warnings.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=r"Parameter `allow_nonexistent_upstream")
        return dg.TimeWindowPartitionMapping(
            start_offset=start_offset, end_offset=end_offset, allow_nonexistent_upstream_partitions=True
        )
