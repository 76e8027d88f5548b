"""Schedules: the monthly marketing batch (identity → journeys → attribution → report of the previous month).

Identity is rebuilt in the same run, so the month's people are resolved from every file that has landed by
then; the daily touchpoints it reads are kept up to date by declarative automation (late files included).
"""

import datetime as dt
import os
from zoneinfo import ZoneInfo

import dagster as dg

REPORT_TIMEZONE = os.environ.get("INTELLIGENCE_REPORT_TIMEZONE", "UTC")
MONTHLY_SELECTION = dg.AssetSelection.assets(
    ["marketing", "identity"],
    ["marketing", "journeys"],
    ["marketing", "attribution"],
    ["marketing", "attribution_report"],
).required_multi_asset_neighbors()  # each module's quarantine is produced with it

monthly_attribution_job = dg.define_asset_job(
    "monthly_attribution",
    selection=MONTHLY_SELECTION,
    description="Identity, journeys, attribution and the report of one month.",
)


def previous_month_key(now: dt.datetime) -> str:
    """The partition key of the month before `now`'s month (its first day)."""
    first = now.date().replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1).isoformat()


@dg.schedule(
    job=monthly_attribution_job,
    cron_schedule="0 6 1 * *",
    execution_timezone=REPORT_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="On the 1st at 06:00 (INTELLIGENCE_REPORT_TIMEZONE, default UTC): last month's identity, "
    "journeys, attribution and report.",
)
def monthly_attribution_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Materialize the previous month's identity, journeys, attribution and report."""
    now = context.scheduled_execution_time or dt.datetime.now(ZoneInfo(REPORT_TIMEZONE))
    key = previous_month_key(now)
    return dg.RunRequest(run_key=f"monthly-attribution-{key}", partition_key=key)
