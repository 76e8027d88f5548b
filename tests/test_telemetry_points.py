"""telemetry/points through `dg.materialize`: files spanning days, quarantine reasons, the conflict rule, the index.

Hand-written landing files with known answers in a temp INTELLIGENCE_HOME, a real (in-memory) Dagster instance.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.telemetry import points
from intelligence.resources import build_resources
from intelligence.settings import Settings

BULK = """timestamp,value
2024-01-01T23:50:00Z,10
2024-01-01T23:55:00Z,11
2024-01-02T00:00:00Z,12
2024-01-02T00:05:00Z,abc
not-a-time,13
2024-01-02T00:10:00Z,14,extra
2024-01-02T00:15:00Z,15
2024-01-02T00:15:00Z,15
1704154200,16
2024-01-02T01:20:00+01:00,17
2024-01-02T00:25:00,
2024-01-02T00:30:00Z,nan
2024-01-03T00:00:00Z,20
"""
CORRECTION = "timestamp,value\n2024-01-02T00:00:00Z,99\n"
CPU = "timestamp,value\n2024-01-02 12:00:00,50\n2024-01-02T12:05:00Z,51\n"
OLD, NEW = 1_700_000_000, 1_700_000_600  # file mtimes (s): the correction is newer

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # Dagster logs only warnings


def _write(path: Path, text: str, mtime: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def landed(home: Settings, tmp_path: Path) -> Settings:
    root = home.landing / "telemetry"
    _write(root / "web-1" / "latency" / "bulk.csv", BULK, OLD)
    _write(root / "web-1" / "latency" / "correction.csv", CORRECTION, NEW)
    _write(root / "web-1" / "cpu" / "any name.csv", CPU, OLD)
    _write(root / "web-1" / "cpu" / "notes.txt", "not data", OLD)
    outside = tmp_path / "outside" / "cpu"
    _write(outside / "x.csv", "timestamp,value\n2024-01-02T00:00:00Z,1\n", OLD)
    (root / "evil").symlink_to(tmp_path / "outside", target_is_directory=True)
    return home


def _run(config: Settings, instance: dg.DagsterInstance, **kwargs: object) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [points.points, points.landing_telemetry],
        run_config=QUIET,
        selection=dg.AssetSelection.assets(points.KEY).required_multi_asset_neighbors(),
        instance=instance,
        resources=build_resources(config),
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.success
    return result


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == points.KEY)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _lake(config: Settings, day: str) -> pl.DataFrame:
    return pl.read_parquet(config.lake / "telemetry" / "points" / f"{day}.parquet")


def _quarantine(config: Settings, day: str) -> pl.DataFrame:
    return pl.read_parquet(config.quarantine / "telemetry" / "points_quarantine" / f"{day}.parquet")


def test_a_day_gets_its_rows_from_files_spanning_days_with_every_bad_row_quarantined(landed: Settings) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        meta = _metadata(_run(landed, instance, partition_key="2024-01-02"))
    accepted = _lake(landed, "2024-01-02")
    assert accepted.columns == ["host", "metric", "timestamp", "value", "day"]
    assert accepted.schema["timestamp"] == pl.Datetime("us", "UTC")
    got = [(r["metric"], r["timestamp"].strftime("%H:%M"), r["value"]) for r in accepted.iter_rows(named=True)]
    # sorted; the correction (newest file) wins at 00:00; epoch and +01:00 forms land at 00:10 and 00:20
    assert got == [
        ("cpu", "12:00", 50.0),
        ("cpu", "12:05", 51.0),
        ("latency", "00:00", 99.0),
        ("latency", "00:10", 16.0),
        ("latency", "00:15", 15.0),
        ("latency", "00:20", 17.0),
    ]
    quarantined = _quarantine(landed, "2024-01-02")
    rules = sorted(zip(quarantined["_stage"], quarantined["_rule"], strict=True))
    assert rules == [
        ("cleansing", "conflicting_duplicate"),
        ("cleansing", "duplicate_row"),
        ("cleansing", "missing_value"),
        ("cleansing", "non_finite_value"),
        ("parse", "parse"),
        ("parse", "parse"),
        ("parse", "parse"),
    ]
    reasons = " | ".join(quarantined["_reason"].to_list())
    assert "value: not a number (abc)" in reasons
    assert "timestamp: not a timestamp (not-a-time)" in reasons
    assert "ragged row: expected 2 fields, found 3" in reasons
    conflict = quarantined.filter(pl.col("_rule") == "conflicting_duplicate").row(0, named=True)
    assert conflict["value"] == "12.0" and "correction.csv" in conflict["_reason"]
    assert conflict["_source_file"] == "telemetry/web-1/latency/bulk.csv" and conflict["_line"] == 4
    assert quarantined["landing_date"].unique().to_list() == [dt.date(2024, 1, 2)]
    # rows in = accepted + quarantined; only this day's rows are counted
    assert meta["rows_in"] == 13 == accepted.height + quarantined.height
    assert meta["files_read"] == 3 and meta["landing_files"] == 3
    assert "evil" in str(meta["skipped_entries"]) and "notes.txt" in str(meta["skipped_entries"])
    assert "evil" not in accepted["host"].to_list()


def test_a_range_splits_by_day_and_only_changed_files_are_read_again(landed: Settings) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        first = _metadata(
            _run(
                landed,
                instance,
                tags={
                    "dagster/asset_partition_range_start": "2024-01-01",
                    "dagster/asset_partition_range_end": "2024-01-03",
                },
            )
        )
        assert first["files_reindexed"] == 3
        days = ["2024-01-01", "2024-01-02", "2024-01-03"]
        total = sum(_lake(landed, d).height + _quarantine(landed, d).height for d in days)
        assert total == first["rows_in"] == 16  # every landed record, in exactly one day
        assert _lake(landed, "2024-01-01")["value"].to_list() == [10.0, 11.0]
        index = pl.read_parquet(landed.lake / "telemetry" / "_landing_index.parquet")
        assert sorted(index["path"].to_list()) == [
            "telemetry/web-1/cpu/any name.csv",
            "telemetry/web-1/latency/bulk.csv",
            "telemetry/web-1/latency/correction.csv",
        ]
        bulk = index.filter(pl.col("path").str.ends_with("bulk.csv")).row(0, named=True)
        assert (bulk["min_day"], bulk["max_day"]) == (dt.date(2024, 1, 1), dt.date(2024, 1, 3))

        unchanged = _metadata(_run(landed, instance, partition_key="2024-01-03"))
        assert unchanged["files_reindexed"] == 0 and unchanged["files_read"] == 1  # only bulk.csv reaches day 3

        bulk_path = landed.landing / "telemetry" / "web-1" / "latency" / "bulk.csv"
        _write(bulk_path, BULK + "2024-01-03T00:05:00Z,21\n2024-01-04T00:00:00Z,22\n", NEW + 60)
        grown = _metadata(_run(landed, instance, partition_key="2024-01-03"))
    assert grown["files_reindexed"] == 1
    assert _lake(landed, "2024-01-03")["value"].to_list() == [20.0, 21.0]
    index = pl.read_parquet(landed.lake / "telemetry" / "_landing_index.parquet")
    assert index.filter(pl.col("path").str.ends_with("bulk.csv"))["max_day"].item() == dt.date(2024, 1, 4)


def test_the_landing_index_is_rebuilt_when_damaged(landed: Settings) -> None:
    index = landed.lake / "telemetry" / "_landing_index.parquet"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"not parquet")
    with dg.DagsterInstance.ephemeral() as instance:
        meta = _metadata(_run(landed, instance, partition_key="2024-01-02"))
    assert meta["files_reindexed"] == 3
    assert pl.read_parquet(index).height == 3
