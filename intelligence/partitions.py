"""Partitions, from the one start-date setting: daily for sources and telemetry, monthly for reports."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from intelligence.settings import settings

START_DATE = settings().start_date

DAILY = dg.DailyPartitionsDefinition(start_date=START_DATE.isoformat(), timezone="UTC")
MONTHLY = dg.MonthlyPartitionsDefinition(start_date=START_DATE.replace(day=1).isoformat(), timezone="UTC")


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The days this run covers: one for a normal run, several for a single-run backfill."""
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def month_start(key: str) -> dt.date:
    return dt.date.fromisoformat(key).replace(day=1)
