"""The telemetry chain end to end through `dg.materialize`, on the seeded labelled generator.

Two homes hold the same corpus (3 hosts × 6 metrics × 16 days at 5 min, 3 injected incidents per host on
average). Home A runs the whole chain as one single-run backfill of the 16 days. Home B mixes backfills and
day-by-day runs: days 1-9 in one run, day 10 alone (an episode crosses midnight into it), days 11-16 in one run
while day 16 has landed only in part (its morning); then the rest of day 16 is appended to the same files and
day 16 is run alone again. Both homes must end identical, and appending must not change any score already
computed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.telemetry import (
    anomaly_events,
    anomaly_scores,
    detection_quality,
    diagnostics,
    health_events,
    incidents,
    points,
    tickets,
)
from intelligence.resources import build_resources
from intelligence.settings import Settings
from intelligence.synthetic.telemetry import TelemetryConfig, generate_telemetry, simulate_telemetry

START = dt.date(2024, 1, 1)
CONFIG = TelemetryConfig(seed=13, hosts=3, days=16, incidents_per_host=3.0)
LAST = START + dt.timedelta(days=CONFIG.days - 1)
DAY_BY_DAY = dt.date(2024, 1, 10)  # run alone in home B; an episode of seed 13 crosses midnight into it
ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    points.landing_telemetry,
    points.points,
    anomaly_scores.anomaly_scores,
    health_events.health_events,
    anomaly_events.anomaly_events,
    incidents.incidents,
    diagnostics.diagnostics,
    tickets.tickets,
    detection_quality.detection_quality,
]
CHAIN = ["points", "anomaly_scores", "anomaly_events", "incidents"]
EVERYTHING_BUT_QUALITY = (
    dg.AssetSelection.groups("telemetry")
    - dg.AssetSelection.assets(["telemetry", "detection_quality"]).required_multi_asset_neighbors()
)

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # Dagster logs only warnings


def _select(*names: str) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*[["telemetry", n] for n in names]).required_multi_asset_neighbors()


def _range(first: dt.date, last: dt.date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def _metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, object]:
    key = dg.AssetKey(["telemetry", name])
    event = [e for e in result.get_asset_materialization_events() if e.asset_key == key][-1]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _hold_back_afternoon(landing: Path, day: dt.date) -> dict[Path, str]:
    """Cut each stream's file of `day` after its first half; return the lines held back per file."""
    held: dict[Path, str] = {}
    for path in sorted((landing / "telemetry").glob(f"*/*/{day.isoformat()}.csv")):
        lines = path.read_text().splitlines(keepends=True)
        cut = 1 + (len(lines) - 1) // 2
        path.write_text("".join(lines[:cut]))
        held[path] = "".join(lines[cut:])
    return held


@dataclass
class World:
    a: Settings
    b: Settings
    instance: dg.DagsterInstance
    quality: dict[str, object]
    scores_before_append: pl.DataFrame
    appended: dict[str, object]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("telemetry")
    a = Settings(home=root / "a", start_date=START)
    b = Settings(home=root / "b", start_date=START)
    generate_telemetry(CONFIG, a.landing, a.truth)
    generate_telemetry(CONFIG, b.landing, b.truth)
    held = _hold_back_afternoon(b.landing, LAST)
    res_a, res_b = build_resources(a), build_resources(b)
    with dg.DagsterInstance.ephemeral() as instance:
        whole = dg.materialize(
            ASSETS,
            run_config=QUIET,
            selection=EVERYTHING_BUT_QUALITY,
            instance=instance,
            resources=res_a,
            tags=_range(START, LAST),
        )
        assert whole.success
        quality = dg.materialize(
            ASSETS, run_config=QUIET, selection=_select("detection_quality"), instance=instance, resources=res_a
        )
        assert quality.success

        for first, last in (
            (START, DAY_BY_DAY - dt.timedelta(days=1)),
            (DAY_BY_DAY, DAY_BY_DAY),
            (DAY_BY_DAY + dt.timedelta(days=1), LAST),
        ):
            tags = _range(first, last) if first != last else {}
            key = first.isoformat() if first == last else None
            run = dg.materialize(
                ASSETS,
                run_config=QUIET,
                selection=_select(*CHAIN),
                instance=instance,
                resources=res_b,
                partition_key=key,
                tags=tags,
            )
            assert run.success
        before = pl.read_parquet(b.lake / "telemetry" / "anomaly_scores" / f"{LAST}.parquet")
        for path, text in held.items():
            with path.open("a") as handle:
                handle.write(text)
        again = dg.materialize(
            ASSETS,
            run_config=QUIET,
            selection=_select(*CHAIN),
            instance=instance,
            resources=res_b,
            partition_key=LAST.isoformat(),
        )
        assert again.success
        yield World(
            a=a,
            b=b,
            instance=instance,
            quality=_metadata(quality, "detection_quality"),
            scores_before_append=before,
            appended=_metadata(again, "points"),
        )


def _lake(config: Settings, name: str) -> pl.DataFrame:
    return pl.read_parquet(config.lake / "telemetry" / name / "*.parquet")


def test_a_backfill_equals_day_by_day_runs_for_points_scores_events_and_incidents(world: World) -> None:
    for name in CHAIN:
        assert_frame_equal(_lake(world.a, name), _lake(world.b, name))
    events = _lake(world.a, "anomaly_events")
    crossing = events.filter(pl.col("start").dt.date() < pl.col("day"))
    assert crossing.height > 0  # episodes crossing midnight were compared too
    assert crossing.filter(pl.col("day") == DAY_BY_DAY).height > 0, "day 10 of home B must see one crossing"
    # each crossing episode also appears, open, in the partition of the day it started
    earlier = events.join(crossing.select("event_id"), on="event_id").filter(pl.col("day") == pl.col("start").dt.date())
    assert set(earlier["status"].cast(pl.String)) <= {"open", "closed"}


def test_appending_future_data_never_changes_past_scores(world: World) -> None:
    after = pl.read_parquet(world.b.lake / "telemetry" / "anomaly_scores" / f"{LAST}.parquet")
    assert after.height > world.scores_before_append.height
    same_rows = after.join(
        world.scores_before_append.select("host", "metric", "timestamp"), on=["host", "metric", "timestamp"]
    )
    assert_frame_equal(same_rows.sort("host", "metric", "timestamp"), world.scores_before_append)
    # the appended files (one per stream of the day) were found changed through the landing index
    assert world.appended["files_reindexed"] == CONFIG.hosts * len(CONFIG.metrics)
    assert world.appended["files_read"] == CONFIG.hosts * len(CONFIG.metrics)


def test_each_injected_pattern_is_detected_and_classified_through_the_assets(world: World) -> None:
    found = incidents.latest_incidents(_lake(world.a, "incidents"))
    truth = json.loads((world.a.truth / "telemetry" / "incidents.json").read_text())["incidents"]
    assert {t["pattern"] for t in truth} == set(incidents.PATTERNS) - {"unclassified"}
    hits = {}
    for t in truth:
        start = dt.datetime.fromisoformat(t["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(t["end"].replace("Z", "+00:00"))
        near = found.filter(
            pl.col("hosts").str.contains(t["host"])
            & (pl.col("end") >= start - dt.timedelta(minutes=30))
            & (pl.col("start") <= end + dt.timedelta(hours=1))
        )
        hits[(t["host"], t["start"])] = (t["pattern"], t["pattern"] in near["pattern"].cast(pl.String).to_list())
    assert {p for p, ok in hits.values() if ok} == {t["pattern"] for t in truth}, hits
    assert sum(ok for _, ok in hits.values()) >= 0.8 * len(hits), hits
    sizes = found["evidence"].map_elements(lambda e: len(json.loads(e)), return_dtype=pl.Int64).to_list()
    assert min(sizes) >= 1


def test_tickets_never_storm_and_a_rerun_changes_nothing(world: World) -> None:
    warehouse = world.a.warehouse
    with duckdb.connect(str(warehouse), read_only=True) as con:
        table = con.sql("select * from telemetry.tickets order by ticket_id").pl()
        links = con.sql("select * from telemetry.ticket_incidents order by incident_id").pl()
    assert table.height > 0
    open_per_key = table.filter(pl.col("status") == "open").group_by("scope", "pattern").len()
    assert open_per_key.filter(pl.col("len") > 1).height == 0
    assert table["incident_count"].sum() == links.height  # every linked incident counted once
    confident = incidents.latest_incidents(_lake(world.a, "incidents")).filter(
        pl.col("confidence") >= tickets.MIN_CONFIDENCE
    )
    assert set(confident["incident_id"]) <= set(links["incident_id"])
    assert (table["status"] == "resolved").sum() > 0
    rerun = dg.materialize(
        ASSETS,
        run_config=QUIET,
        selection=_select("tickets"),
        instance=world.instance,
        resources=build_resources(world.a),
        partition_key=(START + dt.timedelta(days=9)).isoformat(),
    )
    assert rerun.success
    assert _metadata(rerun, "tickets")["opened"] == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert_frame_equal(con.sql("select * from telemetry.tickets order by ticket_id").pl(), table)
        assert_frame_equal(con.sql("select * from telemetry.ticket_incidents order by incident_id").pl(), links)


def test_every_reported_incident_has_a_diagnosis(world: World) -> None:
    reported = _lake(world.a, "incidents").select("incident_id", "day")
    diagnosed = _lake(world.a, "diagnostics")
    assert_frame_equal(
        diagnosed.select("incident_id", "day").sort("day", "incident_id"), reported.sort("day", "incident_id")
    )
    with_metrics = diagnosed.filter(pl.col("top_metrics") != "[]")
    assert with_metrics.height >= 0.8 * diagnosed.height
    top = json.loads(with_metrics["top_metrics"][0])
    assert {"host", "metric", "before_mean", "during_mean", "max_deviation", "max_score"} <= set(top[0])
    assert (diagnosed["similar"] != "[]").sum() > 0  # repeated patterns find their predecessors
    assert diagnosed["diagnosis"].str.contains("Host history").all()


def test_health_events_cover_every_stream_in_15_minute_intervals(world: World) -> None:
    health = _lake(world.a, "health_events")
    per_day = health.group_by("host", "metric", "day").len()
    assert per_day["len"].max() == 96
    assert per_day.height == CONFIG.hosts * len(CONFIG.metrics) * CONFIG.days
    states = set(health["state"].cast(pl.String))
    assert states == {"ok", "warn", "critical"}
    assert (health["state"] == "ok").mean() > 0.9  # type: ignore[operator]


def test_detection_quality_is_scored_and_shown(world: World) -> None:
    meta = world.quality
    assert "| standard |" in str(meta["quality"]) and "| reward_low_FP |" in str(meta["quality"])
    assert meta["label_windows"] == sum(len(v) for v in simulate_telemetry(CONFIG).labels.values())
    assert float(meta["score_standard"]) > 40.0  # type: ignore[arg-type]
    table = pl.read_parquet(world.a.lake / "telemetry" / "detection_quality.parquet")
    assert table["profile"].cast(pl.String).to_list() == ["standard", "reward_low_FP", "reward_low_FN"]


def test_the_chain_is_choreographed_by_eager_automation() -> None:
    conditions = {}
    for asset in ASSETS:
        if isinstance(asset, dg.AssetsDefinition):
            for key, condition in asset.automation_conditions_by_key.items():
                conditions[key.path[-1]] = condition
    for name in ("points", "anomaly_scores", "health_events", "anomaly_events", "incidents"):
        assert conditions[name] is not None and conditions[name].get_label() == "eager", name
    for name in ("diagnostics", "tickets", "detection_quality"):
        assert conditions.get(name) is None, name
