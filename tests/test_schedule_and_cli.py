"""The monthly schedule, and backfills of history through the `dagster` CLI (as an operator runs them)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from intelligence.definitions import defs
from intelligence.policy import eager_recent_allowing_gaps
from intelligence.schedules import monthly_attribution_schedule, previous_month_key

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_schedule_builds_the_previous_month_on_the_first_at_six() -> None:
    assert monthly_attribution_schedule.cron_schedule == "0 6 1 * *"
    assert monthly_attribution_schedule.execution_timezone == "UTC"
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
    )
    request = monthly_attribution_schedule.evaluate_tick(context).run_requests[0]  # type: ignore[index]
    assert request.partition_key == "2024-02-01"
    assert request.run_key == "monthly-attribution-2024-02-01"
    assert previous_month_key(dt.datetime(2025, 1, 1, 6)) == "2024-12-01"
    job = defs.resolve_job_def("monthly_attribution")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    # identity in the same run: the month's people resolved from every file landed by then
    assert {"marketing/identity", "marketing/journeys", "marketing/attribution", "marketing/attribution_report"} <= keys


def test_touchpoints_follow_late_files_of_recent_days_not_only_the_latest_day() -> None:
    """Exports land the morning after (some days later): automation rebuilds those days' touchpoints, where
    `eager()` would only ever build the latest partition."""
    touchpoints = dg.AssetKey(["marketing", "touchpoints"])
    now = dt.datetime.now(dt.UTC)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
        late = [(now - dt.timedelta(days=n)).date().isoformat() for n in (1, 3, 20)]
        old = (now - dt.timedelta(days=60)).date().isoformat()  # beyond the automation's reach: a backfill
        for day in [*late, old]:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=dg.AssetKey(["marketing", "cleansed_crm"]), partition=day)
            )
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor, evaluation_time=now + dt.timedelta(seconds=30)
        )
        assert set(second.get_requested_partitions(touchpoints)) == set(late)

        # The monthly identity rebuild refines person ids only: no month of touchpoints rebuilt for it.
        month = (now - dt.timedelta(days=3)).date().replace(day=1).isoformat()
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=dg.AssetKey(["marketing", "identity"]), partition=month)
        )
        third = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=second.cursor, evaluation_time=now + dt.timedelta(seconds=60)
        )
        assert set(third.get_requested_partitions(touchpoints)) == set()


def test_an_input_updated_while_its_partition_is_being_built_is_not_forgotten() -> None:
    """A late file lands while the partition it feeds is being rebuilt (that run read the older data): once
    the run is over, the partition is rebuilt again."""
    daily = dg.DailyPartitionsDefinition("2024-01-01", end_offset=1)

    @dg.asset(partitions_def=daily)
    def source() -> None: ...

    @dg.asset(partitions_def=daily, deps=[source], automation_condition=eager_recent_allowing_gaps())
    def derived() -> None: ...

    small = dg.Definitions(assets=[source, derived])
    day, now = "2024-03-10", dt.datetime(2024, 3, 12, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:

        def tick(cursor: object) -> tuple[set[str | None], object]:
            result = dg.evaluate_automation_conditions(
                defs=small,
                instance=instance,
                cursor=cursor,
                evaluation_time=now,  # type: ignore[arg-type]
            )
            return set(result.get_requested_partitions(derived.key)), result.cursor

        _, cursor = tick(None)
        instance.report_runless_asset_event(dg.AssetMaterialization("source", partition=day))
        requested, cursor = tick(cursor)
        assert requested == {day}
        run = instance.create_run_for_job(
            job_def=small.resolve_implicit_global_asset_job_def(),
            asset_selection=frozenset({derived.key}),
            tags={"dagster/partition": day},
            status=dg.DagsterRunStatus.STARTED,
        )
        requested, cursor = tick(cursor)  # the daemon ticks on while the run works
        assert requested == set()
        instance.report_runless_asset_event(dg.AssetMaterialization("source", partition=day))  # lands mid-run
        requested, cursor = tick(cursor)
        assert requested == set()  # not while the partition is being built
        instance.report_runless_asset_event(dg.AssetMaterialization("derived", partition=day))
        instance.handle_run_event(  # the run ends
            run.run_id, dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=run.job_name, message="done")
        )
        requested, cursor = tick(cursor)
        assert requested == {day}
        requested, cursor = tick(cursor)
        assert requested == set()  # once


def test_schedule_timezone_is_configurable() -> None:
    code = "from intelligence.schedules import monthly_attribution_schedule as s; print(s.execution_timezone)"
    env = {**os.environ, "INTELLIGENCE_REPORT_TIMEZONE": "Europe/Berlin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Europe/Berlin"


def test_cli_backfills_a_partition_range_in_one_run(tmp_path: Path) -> None:
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        folder = home / "landing" / "ads" / day
        folder.mkdir(parents=True)
        (folder / f"ads_{day}_01.csv").write_text(
            "click_id,cookie_id,campaign,channel,cost,ts\n"
            f"c-{day}-1,k1,brand,paid_search,1.5,{day}T10:00:00Z\n"
            f"c-{day}-2,k2,brand,display,-3,{day}T11:00:00Z\n"
        )
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "INTELLIGENCE_HOME": str(home)}
    selection = "marketing/raw_ads,marketing/cleansed_ads,marketing/cleansed_ads_quarantine"
    proc = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "intelligence.definitions", "--select", selection,
         "--partition-range", "2024-01-01...2024-01-03"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lake = home / "lake" / "marketing"
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert pl.read_parquet(lake / "cleansed_ads" / f"{day}.parquet")["click_id"].to_list() == [f"c-{day}-1"]
        quarantined = pl.read_parquet(home / "quarantine" / "marketing" / "cleansed_ads_quarantine" / f"{day}.parquet")
        assert quarantined["_rule"].to_list() == ["cost|min"]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1  # one single-run backfill, not one run per day
        assert runs[0].tags["dagster/asset_partition_range_start"] == "2024-01-01"
